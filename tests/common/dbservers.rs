//! PostgreSQL and MariaDB servers started by the tests on free loopback ports
//! in temporary folders, stopped by PID.
