"""ppl.inference — see docs/architecture.md."""
if __name__ != "ppl.inference":  # pragma: no cover - guard against double import
    raise ImportError(
        "this folder is the package 'ppl.inference'; import it as 'ppl.inference', not 'inference' "
        "(is the repository root on sys.path ahead of the installed package?)"
    )
