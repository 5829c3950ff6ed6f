"""The reference meaning: eager interpretation of programs into representations.

See ``free`` (programs as trees of effects), and one module per
representation: ``enumeration``, ``sampler`` (sampler, weighted, traced),
``population`` and ``sequential``.
"""
