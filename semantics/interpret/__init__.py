"""The reference meaning: eager interpretation of programs into representations.

See ``free`` (programs as trees of effects), and one module per
representation: ``enumeration``, ``sampler`` (the sampler and the weighted
sampler, and the particle: a run in progress), ``population`` (spawn,
resample), ``sequential`` (advance to the next score; ``sequentially``) and
``traced`` (a run re-run with one choice changed: MH). The eager algorithms
of ``inference`` are compositions of these (importance sampling is spawn then
weigh, SMC is ``sequentially(resample) . spawn(n)``, resample-move adds
``traced.mh_step``). Weights are summarised and resampled by
``semantics.resampling``, shared with the compiled engine.
"""
