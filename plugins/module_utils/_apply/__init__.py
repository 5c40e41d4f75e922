# PRIVATE: validate -> apply atomically -> read back, one file per backend.
