-- sysbench script for tests/bench/run.py: every event is one full login
-- (TCP connect, handshake, mysql_native_password authentication) and COM_QUIT,
-- done by sysbench's C client library (libmariadb), so the client is cheap.
function thread_init()
  drv = sysbench.sql.driver()
end

function event()
  local con = drv:connect()
  con:disconnect()
end
