"""smoothbot's durable state: the job queue and per-chat settings. The only package with SQL."""
