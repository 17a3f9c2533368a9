"""One model trained on one fold, and the folder it leaves: training (:mod:`.train`, across
GPUs :mod:`.distributed`), the folder's owner (:mod:`.folder`), MMEngine's work directory in
it (:mod:`.work_dir`), and prediction with the trained model (:mod:`.predict`)."""
