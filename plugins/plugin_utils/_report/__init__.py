# PRIVATE: the fleet compliance report (docs/report.md), stdlib only: entries -> summaries -> renderers.
