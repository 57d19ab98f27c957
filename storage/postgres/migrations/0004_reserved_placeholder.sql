-- Placeholder on the secrets branch for a migration another branch of
-- issue 11 owns: the lead drops this file when merging that branch.
SELECT 1;
