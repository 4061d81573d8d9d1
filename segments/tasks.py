"""Celery tasks of the segments app: take ids, call a service, safe to run twice."""

from celery import shared_task

from .models import Segment, SegmentKind
from .services import segment_bulk_fail, segment_bulk_run, segment_refresh, segments_using


@shared_task(ignore_result=True)
def segment_refresh_task(segment_id: int) -> None:
    """Recompute one dynamic segment (the `bulk` queue); a deleted segment is nothing to do. When its members
    changed, the segments whose rules name it follow (there are no cycles: saving one is refused)."""
    segment = Segment.objects.filter(pk=segment_id).first()
    if segment is None:
        return
    result = segment_refresh(segment_id=segment_id)
    if result.entered or result.exited:
        for user in segments_using(segment):
            segment_refresh_task.delay(user.pk)


@shared_task(ignore_result=True)
def segments_reconcile_task() -> None:
    """Beat, nightly: a full refresh of every dynamic segment, one task each. It also moves contacts whom only
    time moved ("no purchase for 30 days"), which no event or edit announces."""
    for segment_id in Segment.objects.filter(kind=SegmentKind.DYNAMIC).values_list("id", flat=True):
        segment_refresh_task.delay(segment_id)


@shared_task(bind=True, ignore_result=True, max_retries=3)
def segment_bulk_task(self, job_id: int) -> None:
    """A bulk action on a segment's members (the `bulk` queue). Resumes after the last batch done when
    retried; after the last retry the job shows as failed with the reason."""
    try:
        segment_bulk_run(job_id=job_id)
    except Exception as error:
        if self.request.retries >= self.max_retries:
            segment_bulk_fail(job_id=job_id, reason=str(error) or type(error).__name__)
            raise
        raise self.retry(exc=error, countdown=10 * 2**self.request.retries) from error
