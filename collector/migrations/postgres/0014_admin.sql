-- Administration: an enrollment token can be revoked before it is used up or expires (it is
-- then refused at enrollment and listed as revoked). Keep in step with ../sqlite/0014_admin.sql.
ALTER TABLE enrollment_tokens ADD COLUMN revoked_at_ms BIGINT;
CREATE INDEX certificates_issued ON certificates (issued_at_ms);
