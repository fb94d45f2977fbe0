-- One batch of the lifecycle on SQLite, as the backend's statements do it, with no application:
-- claim (requests -> processes, in claim order, for a registered worker) in one write
-- transaction, then completion (processes -> SUCCESSFUL results) in another. :B is the batch.
-- Times are integer microseconds and uuids time-ordered text, as the backend writes them.
BEGIN IMMEDIATE;
DELETE FROM temp.picked;
INSERT INTO temp.picked (id)
  SELECT id FROM plainjobs_jobrequest
  WHERE queue = 'default'
    AND (start_at IS NULL OR start_at <= CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER))
    AND EXISTS (SELECT 1 FROM plainjobs_workerheartbeat WHERE worker_id = '00000000-0000-7000-8000-000000000001')
  ORDER BY priority DESC, COALESCE(start_at, created_at), id
  LIMIT :B;
INSERT INTO plainjobs_jobprocess (uuid, created_at, started_at, job_request_uuid, requested_at, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, trace_id, span_id, worker_id)
  SELECT uuid7(), now_us(), now_us(), uuid, created_at, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, trace_id, span_id, '00000000-0000-7000-8000-000000000001'
  FROM plainjobs_jobrequest WHERE id IN (SELECT id FROM temp.picked) ORDER BY id;
DELETE FROM plainjobs_jobrequest WHERE id IN (SELECT id FROM temp.picked);
COMMIT;
BEGIN IMMEDIATE;
INSERT INTO plainjobs_jobresult (uuid, created_at, job_process_uuid, started_at, ended_at, error, status, job_request_uuid, requested_at, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, retry_job_request_uuid, trace_id, span_id)
  SELECT uuid7(), now_us(), uuid, started_at, now_us(), '', 'SUCCESSFUL', job_request_uuid, requested_at, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, NULL, trace_id, span_id
  FROM plainjobs_jobprocess WHERE worker_id = '00000000-0000-7000-8000-000000000001' ORDER BY id;
DELETE FROM plainjobs_jobprocess WHERE worker_id = '00000000-0000-7000-8000-000000000001';
COMMIT;
