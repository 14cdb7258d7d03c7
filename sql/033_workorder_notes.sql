-- What the person fixing a work order (工单) writes and photographs on site: notes and photos of
-- the repair, kept with the order and shown in its detail (api/patrol/notes.py, docs/patrol.md).
--
-- Both are bounded here as well as in the API: a note's length, a photo's stored size and pixel
-- size. How many an order may hold is counted by the API under a lock on the order's row.
-- Photos are stored as re-encoded JPEG (never the upload as sent: no camera metadata, no GPS),
-- in the database, so a backup of the database holds them too. Plain tables on PostgreSQL and
-- TimescaleDB alike.

CREATE TABLE work_order_note (
    id            bigserial PRIMARY KEY,
    work_order_id bigint NOT NULL REFERENCES work_order(id) ON DELETE CASCADE,
    author        text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    body          text NOT NULL CHECK (length(btrim(body)) BETWEEN 1 AND 2000)
);
CREATE INDEX work_order_note_order_idx ON work_order_note (work_order_id, created_at);

CREATE TABLE work_order_photo (
    id            bigserial PRIMARY KEY,
    work_order_id bigint NOT NULL REFERENCES work_order(id) ON DELETE CASCADE,
    author        text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    uploaded_type text NOT NULL CHECK (uploaded_type IN ('image/jpeg', 'image/png')),  -- what was sent
    width         integer NOT NULL CHECK (width BETWEEN 1 AND 1280),
    height        integer NOT NULL CHECK (height BETWEEN 1 AND 1280),
    jpeg          bytea NOT NULL CHECK (octet_length(jpeg) BETWEEN 1 AND 2097152)
);
CREATE INDEX work_order_photo_order_idx ON work_order_photo (work_order_id, created_at);
