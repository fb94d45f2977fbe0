-- Our additions in the form plain.postgres' convergence leaves alone (see FINDINGS.md, 2b/2d):
-- indexes as the backing indexes of btree EXCLUDE constraints (an unmanaged constraint type),
-- plus the notify trigger (convergence never reads pg_trigger). Each EXCLUDE includes `id WITH
-- =`, so no two rows can ever conflict (id is the primary key): the constraint never refuses a
-- row; it exists for its index. Idempotent.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = 'plainjobs_jobrequest'::regclass
                   AND conname = 'plainjobs_jobrequest_claim_excl') THEN
        -- The claim index: the claim's ORDER BY exactly (FIFO within priority).
        ALTER TABLE plainjobs_jobrequest ADD CONSTRAINT plainjobs_jobrequest_claim_excl
            EXCLUDE USING btree (queue WITH =, priority DESC WITH =,
                                 (COALESCE(start_at, created_at)) WITH =, id WITH =);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = 'plainjobs_jobresult'::regclass
                   AND conname = 'plainjobs_jobresult_retryable_excl') THEN
        -- The retry pass: retryable results without scanning history.
        ALTER TABLE plainjobs_jobresult ADD CONSTRAINT plainjobs_jobresult_retryable_excl
            EXCLUDE USING btree (id WITH =)
            WHERE (retry_job_request_uuid IS NULL AND retries > 0 AND retry_attempt < retries
                   AND status IN ('ERRORED', 'LOST', 'CANCELLED'));
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = 'plainjobs_jobresult'::regclass
                   AND conname = 'plainjobs_jobresult_class_key_excl') THEN
        -- Finished results by key (the scheduling pass), keyed rows only.
        ALTER TABLE plainjobs_jobresult ADD CONSTRAINT plainjobs_jobresult_class_key_excl
            EXCLUDE USING btree (job_class WITH =, concurrency_key WITH =, id WITH =)
            WHERE (concurrency_key <> '');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = 'plainjobs_jobresult'::regclass
                   AND conname = 'plainjobs_jobresult_job_request_uuid_excl') THEN
        -- Results by request uuid (show, the enqueue's idempotent retry).
        ALTER TABLE plainjobs_jobresult ADD CONSTRAINT plainjobs_jobresult_job_request_uuid_excl
            EXCLUDE USING btree (job_request_uuid WITH =, id WITH =);
    END IF;
END
$$;
CREATE OR REPLACE FUNCTION plainjobs_notify_jobrequest() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    PERFORM pg_notify('plainjobs_jobrequest', TG_TABLE_SCHEMA);
    RETURN NULL;
END
$f$;
DROP TRIGGER IF EXISTS plainjobs_jobrequest_notify ON plainjobs_jobrequest;
CREATE TRIGGER plainjobs_jobrequest_notify AFTER INSERT ON plainjobs_jobrequest
    FOR EACH STATEMENT EXECUTE FUNCTION plainjobs_notify_jobrequest();
