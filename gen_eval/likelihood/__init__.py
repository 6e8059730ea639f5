"""Log-likelihood by every method a model allows: exact, ELBO, IWAE, AIS and BDMC.

:mod:`~gen_eval.likelihood.annealing` holds what every annealed importance sampler shares (the
β schedule, log-mean-exp with its standard error, the result type); ``ais`` and ``bdmc`` anneal
over a decoder's latent z; ``observation`` gives p(x | z) for decoders without one; ``methods``
picks and runs the methods for ``gen-eval likelihood``; ``metric`` is ``evaluate``'s ``bpd``
(AIS with ``-o bpd_method=ais``); ``rbm_ais`` anneals a Boltzmann machine's log Z.
"""
