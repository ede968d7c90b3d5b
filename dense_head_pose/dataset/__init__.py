"""Recordings run, one or many: on this machine or a Ray cluster.

:mod:`.inputs` finds the recordings (paths, searched directories, ``@LIST``);
:mod:`.planning` names and checks each one's outputs and cuts long bags into chunks
(:mod:`.chunks`, which also joins the face ids across the borders); :mod:`.work` is one
task on a worker; :mod:`.driver` runs them on a pool (:mod:`.local_pool`: this process or
``--jobs`` processes; :mod:`.ray_pool` on a Ray cluster, :mod:`.cluster`) and says what
became of each (:mod:`.status`); :mod:`.state` makes a run resumable; :mod:`.table` writes
its table.
"""
