"""The challenge's container: a submission exported as a self-contained bundle
(:mod:`~cephalo.container.bundle`), the entrypoint that predicts with it, and the files that
build and check the image (:mod:`~cephalo.container.image`, from the templates beside it)."""
