"""The sessionizer service: consumes events, keeps per-tab session state, writes batches."""
