"""``gen-eval score`` (registered by ``gen_eval.cli``); being written."""
