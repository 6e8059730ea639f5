"""``gen-eval report`` (registered by ``gen_eval.cli``); being written."""
