"""Celery tasks of the contacts app: take ids, call a service, safe to run twice."""

from celery import shared_task

from .exporting import export_cleanup, export_run


@shared_task(ignore_result=True)
def export_run_task(export_id: int) -> None:
    """Write one export file (routed to the `bulk` queue in settings)."""
    export_run(export_id=export_id)


@shared_task(ignore_result=True)
def export_cleanup_task() -> None:
    """Beat, hourly: delete the files of expired exports."""
    export_cleanup()


@shared_task(ignore_result=True)
def import_run_task(job_id: int) -> None:
    """Run one import job (routed to the `bulk` queue). A job already running or finished is left alone."""
    from .imports import import_run

    import_run(job_id=job_id)
