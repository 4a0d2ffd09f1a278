"""The cluster a multi-worker run is told about (TF_CONFIG), checked without TensorFlow so a
bad one is reported before TensorFlow starts."""

import json

DISTRIBUTIONS = ("none", "mirrored", "multi_worker")


def cluster_spec_error(tf_config):
    """One line saying why `tf_config` (the TF_CONFIG text) cannot start a multi-worker run,
    or None. Needs no TensorFlow, so flags are checked before it starts."""
    if not tf_config:
        return "--distribution=multi_worker needs TF_CONFIG (cluster and task) in the environment"
    try:
        config = json.loads(tf_config)
        cluster, task = config["cluster"], config["task"]
        workers = [*cluster.get("chief", []), *cluster.get("worker", [])]
        task_type, task_id = task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return ('TF_CONFIG must be JSON like {"cluster": {"worker": ["host:port", ...]}, '
                '"task": {"type": "worker", "index": 0}}')
    if not workers:
        return "TF_CONFIG's cluster lists no chief or worker addresses"
    if task_type not in ("chief", "worker") or not 0 <= task_id < len(cluster.get(task_type, [])):
        return f"TF_CONFIG's task {task_type}:{task_id} is not in its cluster"
    return None
