"""What the challenge defines: its prediction file (:mod:`.points`), its evaluation
(:mod:`.evaluate`), the submission folder the kit writes (:mod:`.submission`), and the
container the platform runs (:mod:`.container`)."""
