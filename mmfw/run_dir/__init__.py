"""A run directory on disk, read and written in one place: ``run.json`` (:mod:`.record`),
checkpoints in every layout (:mod:`.checkpoints`), safetensors weights
(:mod:`.safetensors_io`) and whole-or-nothing file writes (:mod:`.files`). Training,
evaluation, export and the report all use it; it imports none of them."""
