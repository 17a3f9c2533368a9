"""What the challenge defines: its prediction file (:mod:`.points`), its evaluation
(:mod:`.evaluate`), and the submission folder the kit writes in its format
(:mod:`.submission`). The container the platform runs packs an ensemble, so it stands above
the ensemble, in :mod:`cephalo.container`."""
