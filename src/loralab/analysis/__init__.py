"""Analysis: low-rank tools as pure tensor functions, and the study that applies them to runs."""
