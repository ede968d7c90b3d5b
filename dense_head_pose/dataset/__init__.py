"""A dataset of recordings: many bags or videos, on this machine or a Ray cluster.

:mod:`.inputs` finds the recordings (paths, searched directories, ``@LIST``);
:mod:`.planning` names and checks each one's outputs and cuts long bags into chunks
(:mod:`.chunks`, which also joins the face ids across the borders); :mod:`.work` is one
task on a worker; :mod:`.runner` drives the run on a pool (:mod:`.local_pool`,
:mod:`.cluster`); :mod:`.state` makes it resumable; :mod:`.table` writes the dataset's table.
"""
