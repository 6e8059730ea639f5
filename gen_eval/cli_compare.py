"""``gen-eval compare`` (registered by ``gen_eval.cli``); being written."""
