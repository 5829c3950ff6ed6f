"""ppl.stdlib — see docs/architecture.md."""
if __name__ != "ppl.stdlib":  # pragma: no cover - guard against double import
    raise ImportError(
        "this folder is the package 'ppl.stdlib'; import it as 'ppl.stdlib', not 'stdlib' "
        "(is the repository root on sys.path ahead of the installed package?)"
    )
