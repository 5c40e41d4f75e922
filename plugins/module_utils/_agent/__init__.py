# PRIVATE: the host-local audit (distsec-audit): the enforce role's check mode, run on the host by a timer.
