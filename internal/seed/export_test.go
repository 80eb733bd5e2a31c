package seed

// LockKey is the advisory lock seeding holds, for tests that hold it themselves.
const LockKey = lockKey
