-- authex schema, version 2: the password-email index. The email of every
-- user with a password is unique among users with a password, verified or
-- not: password sign-in finds its account there (GetUserByPasswordEmail).
CREATE UNIQUE INDEX users_password_email_key ON users (email_lower)
    WHERE password_hash <> '' AND email_lower <> '';
