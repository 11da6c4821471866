"""Runs inside the airflow environment (called by tests/test_dags.py): loads or tests DAGs, prints JSON.

python harness.py dagbag DAGS_DIR
python harness.py test DAGS_DIR DAG_ID LOGICAL_DATE_ISO
"""

from __future__ import annotations

import json
import sys


def asset_names(condition: object) -> set[str]:
    """The asset names in a schedule's condition (assets combined with | and &, nested)."""
    if condition is None:
        return set()
    children = getattr(condition, "objects", None)
    if children is None:
        return {str(getattr(condition, "name", condition))}
    return set().union(*(asset_names(child) for child in children))


def dagbag(dags_dir: str) -> dict[str, object]:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=dags_dir)
    dags = {}
    for dag_id, dag in bag.dags.items():
        dags[dag_id] = {
            "tags": sorted(dag.tags or []),
            "catchup": dag.catchup,
            "doc_md": bool(dag.doc_md),
            "schedule": type(dag.timetable).__name__,
            "schedule_assets": sorted(asset_names(getattr(dag.timetable, "asset_condition", None))),
            "tasks": {
                t.task_id: {"retries": t.retries, "outlets": [getattr(o, "name", str(o)) for o in t.outlets]}
                for t in dag.tasks
            },
        }
    return {"import_errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": dags}


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    sys.path.insert(0, args[0])  # as Airflow does for its DAGs folder
    result = dagbag(*args)
    print("HARNESS-RESULT " + json.dumps(result))
