# PRIVATE: the enforcement run: its record, shared by the firewall module, the local agent and the report.
