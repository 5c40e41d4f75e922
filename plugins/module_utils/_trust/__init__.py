# PRIVATE: signed policy bundles: verification on the host, trusted state (docs/dev/trust-design.md).
