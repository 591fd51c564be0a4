-- The demo target of docker-compose.yml (mounted into the `postgres` service's initdb directory, so it
-- runs once, on a new data directory): the two tables of `countersign shell`'s embedded demo.
CREATE DATABASE deploys;
\connect deploys

CREATE TABLE sites (
    id integer PRIMARY KEY,
    name text NOT NULL UNIQUE,
    region text NOT NULL,
    plan text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE TABLE deploys (
    id integer PRIMARY KEY,
    site_id integer NOT NULL REFERENCES sites (id),
    commit_sha text NOT NULL,
    status text NOT NULL,
    metadata jsonb,
    deployed_at timestamptz NOT NULL
);
CREATE INDEX deploys_site ON deploys (site_id);

INSERT INTO sites
SELECT i, 'site-' || i, (ARRAY['eu-west', 'us-east', 'us-west', 'ap-south'])[1 + i % 4],
       (ARRAY['free', 'pro', 'business'])[1 + i % 3], now() - i * interval '1 day'
FROM generate_series(1, 40) AS i;

INSERT INTO deploys
SELECT i, 1 + i % 40, md5(i::text), (ARRAY['ready', 'ready', 'ready', 'ready', 'error', 'building'])[1 + i % 6],
       jsonb_build_object('build', i, 'branch', 'main'), now() - i * interval '1 hour'
FROM generate_series(1, 1000) AS i;
