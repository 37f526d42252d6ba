# The doubles' sources are checkpoint code, copied into temporary checkpoint folders and loaded
# with trust_remote_code; they are not importable as test modules.
collect_ignore_glob = ["qwen_audio/*", "desta2/*"]
