-- Latest facts of each probe per host, as the encoded wire message of that probe
-- (SystemFacts, PatchState, AntivirusState, Connectivity, ProbeStatusList, UplinkDiagnosis).
-- Keep in step with ../postgres/0002_host_facts.sql.
CREATE TABLE host_facts (
    agent_id       TEXT NOT NULL REFERENCES agents (agent_id),
    kind           TEXT NOT NULL,
    payload        BLOB NOT NULL,
    updated_at_ms  INTEGER NOT NULL,
    PRIMARY KEY (agent_id, kind)
);
