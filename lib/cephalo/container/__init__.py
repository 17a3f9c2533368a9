"""The challenge's container: a submission exported as a self-contained bundle
(:mod:`.bundle`), the entrypoint that predicts with it, and the files that build and check
the image (:mod:`.image`, from the templates beside it)."""
