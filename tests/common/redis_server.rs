//! redis-server started by the tests on a free loopback port in a temporary
//! folder, stopped by PID.
