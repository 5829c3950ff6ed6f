"""ppl.semantics — see docs/architecture.md."""
if __name__ != "ppl.semantics":  # pragma: no cover - guard against double import
    raise ImportError(
        "this folder is the package 'ppl.semantics'; import it as 'ppl.semantics', not 'semantics' "
        "(is the repository root on sys.path ahead of the installed package?)"
    )
