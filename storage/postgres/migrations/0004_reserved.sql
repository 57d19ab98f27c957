-- Placeholder on branch throttle-replay only: version 4 belongs to another
-- branch of issue 11, and migrations may have no gaps. Delete this file
-- when merging that branch's 0004.
SELECT 1;
