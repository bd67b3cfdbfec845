// What a JDBC application (DBeaver, Spring/Hibernate, Flyway) does through MariaDB Connector/J,
// run against one or more targets in one JVM; compiled and run by tests/e2e/test_jdbc.py.
//
// Arguments: one per target, "name|jdbc-url|user|password|database|table-prefix". Output: one
// line per observation, "name<TAB>section<TAB>value", the database's name replaced by "DB" so
// that a target is comparable with its twin; generated ids go to sections starting with "id:"
// (a sharded table's GROUP sequence gives other ids than a plain table), compared apart.
// An exception is an observation too ("error: SQLState code message"), not the end of the run.

import java.math.BigDecimal;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.Date;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Savepoint;
import java.sql.Statement;
import java.sql.Timestamp;
import java.sql.Types;
import java.util.ArrayList;
import java.util.List;

public class JdbcProbe {
    static String target;
    static String db;

    static void out(String section, String value) {
        String shown = value == null ? "<null>" : value;
        if (db != null) {
            shown = shown.replace(db, "DB");
        }
        System.out.println(target + "\t" + section + "\t" + shown.replace("\n", "\\n").replace("\t", "\\t"));
    }

    static void error(String section, SQLException e) {
        // (Connector/J names the server's connection id: the proxy's is another than the twin's)
        String message = String.valueOf(e.getMessage()).replaceAll("\\(conn=\\d+\\) ", "");
        out(section, "error: " + e.getSQLState() + " " + e.getErrorCode() + " " + message);
    }

    static String row(ResultSet rs) throws SQLException {
        ResultSetMetaData md = rs.getMetaData();
        StringBuilder b = new StringBuilder();
        for (int i = 1; i <= md.getColumnCount(); i++) {
            if (i > 1) {
                b.append(" | ");
            }
            b.append(md.getColumnLabel(i)).append('=').append(rs.getString(i));
        }
        return b.toString();
    }

    static List<String> rows(ResultSet rs) throws SQLException {
        List<String> all = new ArrayList<>();
        while (rs.next()) {
            all.add(row(rs));
        }
        rs.close();
        return all;
    }

    static void rows(String section, ResultSet rs) throws SQLException {
        for (String r : rows(rs)) {
            out(section, r);
        }
    }

    static void query(Connection c, String section, String sql) {
        try (Statement s = c.createStatement()) {
            rows(section, s.executeQuery(sql));
        } catch (SQLException e) {
            error(section, e);
        }
    }

    static void update(Connection c, String section, String sql) {
        try (Statement s = c.createStatement()) {
            out(section, "count=" + s.executeUpdate(sql));
        } catch (SQLException e) {
            error(section, e);
        }
    }

    static void columns(String section, ResultSetMetaData md) throws SQLException {
        for (int i = 1; i <= md.getColumnCount(); i++) {
            out(section, md.getColumnName(i) + " label=" + md.getColumnLabel(i)
                    + " type=" + md.getColumnType(i) + " typeName=" + md.getColumnTypeName(i)
                    + " precision=" + md.getPrecision(i) + " scale=" + md.getScale(i)
                    + " nullable=" + md.isNullable(i) + " auto=" + md.isAutoIncrement(i)
                    + " signed=" + md.isSigned(i) + " display=" + md.getColumnDisplaySize(i)
                    + " class=" + md.getColumnClassName(i) + " table=" + md.getTableName(i)
                    + " catalog=" + md.getCatalogName(i));
        }
    }

    // The rows the generated ids ``keys`` (getGeneratedKeys' rows) name, read back by key: the
    // ids' values differ on a sharded table, the rows they name must not.
    static void readBack(Connection c, String section, String table, List<Long> keys) {
        try (PreparedStatement ps = c.prepareStatement("SELECT name, qty FROM " + table + " WHERE id = ?")) {
            for (long key : keys) {
                ps.setLong(1, key);
                rows(section, ps.executeQuery());
            }
        } catch (SQLException e) {
            error(section, e);
        }
    }

    static List<Long> keys(String section, ResultSet rs) throws SQLException {
        List<Long> all = new ArrayList<>();
        while (rs.next()) {
            all.add(rs.getLong(1));
            out("id:" + section, row(rs));
        }
        rs.close();
        out(section, "n=" + all.size());
        return all;
    }

    static Connection open(String url, String options, String user, String password)
            throws SQLException {
        String sep = url.contains("?") ? "&" : "?";
        return DriverManager.getConnection(url + (options.isEmpty() ? "" : sep + options), user, password);
    }

    public static void main(String[] args) throws Exception {
        Class.forName("org.mariadb.jdbc.Driver");
        for (String spec : args) {
            String[] p = spec.split("\\|", -1);
            target = p[0];
            db = null;
            String url = p[1];
            String user = p[2];
            String password = p[3];
            String database = p[4];
            String t = p[5];
            db = database;
            try {
                run(url, user, password, database, t);
            } catch (SQLException e) {
                error("fatal", e);
            }
        }
    }

    static void run(String url, String user, String password, String database, String t)
            throws SQLException {
        // Connecting: Connector/J's own session set-up, with each option set an application uses.
        String[] optionSets = {
            "", "useServerPrepStmts=true", "useServerPrepStmts=false",
            "rewriteBatchedStatements=true", "useBulkStmts=true", "useBulkStmts=false",
        };
        for (String options : optionSets) {
            try (Connection c = open(url, options, user, password)) {
                out("connect " + options, "valid=" + c.isValid(5) + " catalog=" + c.getCatalog()
                        + " autocommit=" + c.getAutoCommit()
                        + " isolation=" + c.getTransactionIsolation());
            } catch (SQLException e) {
                error("connect " + options, e);
            }
        }

        try (Connection c = open(url, "", user, password)) {
            DatabaseMetaData md = c.getMetaData();
            out("product", md.getDatabaseProductName() + " " + md.getDatabaseProductVersion()
                    + " major=" + md.getDatabaseMajorVersion() + " minor=" + md.getDatabaseMinorVersion());
            out("driver", md.getDriverName() + " " + md.getDriverVersion());
            out("identifiers", "quote=" + md.getIdentifierQuoteString()
                    + " catalogTerm=" + md.getCatalogTerm());
            query(c, "session", "SELECT @@autocommit, @@sql_mode LIKE '%STRICT_TRANS_TABLES%', DATABASE()");

            // Statement: insert, select, generated keys.
            try (Statement s = c.createStatement()) {
                int n = s.executeUpdate("INSERT INTO " + t + "kinds (name, qty, price, born, seen, flag, big, note)"
                        + " VALUES ('stmt', 1, 1.50, '2024-01-02', '2024-01-02 03:04:05.678', 1, 18446744073709551615, 'x')",
                        Statement.RETURN_GENERATED_KEYS);
                out("stmt insert", "count=" + n);
                readBack(c, "stmt key row", t + "kinds", keys("stmt keys", s.getGeneratedKeys()));
            } catch (SQLException e) {
                error("stmt insert", e);
            }
            query(c, "stmt select", "SELECT name, qty, price, born, seen, flag, big, note FROM " + t
                    + "kinds WHERE name = 'stmt'");
            try (Statement s = c.createStatement();
                 ResultSet rs = s.executeQuery("SELECT * FROM " + t + "kinds")) {
                columns("rsmd text", rs.getMetaData());
            } catch (SQLException e) {
                error("rsmd text", e);
            }
            try (Statement s = c.createStatement();
                 ResultSet rs = s.executeQuery("SELECT id AS ident, name, price * 2 AS twice, COUNT(*) AS n"
                         + " FROM " + t + "kinds GROUP BY id, name, price")) {
                columns("rsmd expr", rs.getMetaData());
            } catch (SQLException e) {
                error("rsmd expr", e);
            }

            // DatabaseMetaData, as DBeaver and Hibernate read it.
            try {
                rows("getTables", md.getTables(c.getCatalog(), null, "%", null));
                rows("getTables TABLE", md.getTables(c.getCatalog(), null, "%", new String[] {"TABLE"}));
                rows("getTables null catalog", md.getTables(null, null, t + "kinds", null));
            } catch (SQLException e) {
                error("getTables", e);
            }
            try {
                rows("getColumns", md.getColumns(c.getCatalog(), null, "%", "%"));
            } catch (SQLException e) {
                error("getColumns", e);
            }
            for (String table : new String[] {"kinds", "parent", "child"}) {
                try {
                    rows("getPrimaryKeys " + table, md.getPrimaryKeys(c.getCatalog(), null, t + table));
                } catch (SQLException e) {
                    error("getPrimaryKeys " + table, e);
                }
                try {
                    rows("getIndexInfo " + table, md.getIndexInfo(c.getCatalog(), null, t + table, false, false));
                } catch (SQLException e) {
                    error("getIndexInfo " + table, e);
                }
                try {
                    rows("getImportedKeys " + table, md.getImportedKeys(c.getCatalog(), null, t + table));
                } catch (SQLException e) {
                    error("getImportedKeys " + table, e);
                }
                try {
                    rows("getImportedKeys null catalog " + table, md.getImportedKeys(null, null, t + table));
                } catch (SQLException e) {
                    error("getImportedKeys null catalog " + table, e);
                }
                try {
                    rows("getExportedKeys " + table, md.getExportedKeys(c.getCatalog(), null, t + table));
                } catch (SQLException e) {
                    error("getExportedKeys " + table, e);
                }
            }
            try {
                rows("getTables views", md.getTables(c.getCatalog(), null, "%", new String[] {"VIEW"}));
                rows("getColumns view", md.getColumns(c.getCatalog(), null, t + "v_parent", "%"));
                rows("getBestRowIdentifier", md.getBestRowIdentifier(c.getCatalog(), null, t + "kinds",
                        DatabaseMetaData.bestRowSession, true));
                rows("getCrossReference", md.getCrossReference(c.getCatalog(), null, t + "parent",
                        c.getCatalog(), null, t + "child"));
                rows("getVersionColumns", md.getVersionColumns(c.getCatalog(), null, t + "kinds"));
                rows("getProcedures", md.getProcedures(c.getCatalog(), null, "%"));
                rows("getFunctions", md.getFunctions(c.getCatalog(), null, "%"));
                rows("getTableTypes", md.getTableTypes());
                rows("getClientInfoProperties", md.getClientInfoProperties());
            } catch (SQLException e) {
                error("more metadata", e);
            }
            try {
                for (String cat : rows(md.getCatalogs())) {
                    out("getCatalogs", cat);
                }
            } catch (SQLException e) {
                error("getCatalogs", e);
            }
            try {
                rows("getSchemas", md.getSchemas());
            } catch (SQLException e) {
                error("getSchemas", e);
            }
            try {
                rows("getTypeInfo", md.getTypeInfo());
            } catch (SQLException e) {
                error("getTypeInfo", e);
            }

            // Transactions: rollback, commit, savepoints.
            try {
                c.setAutoCommit(false);
                update(c, "tx insert", "INSERT INTO " + t + "kinds (name, qty) VALUES ('tx-rolled', 1)");
                c.rollback();
                update(c, "tx insert", "INSERT INTO " + t + "kinds (name, qty) VALUES ('tx-kept', 2)");
                c.commit();
                update(c, "tx insert", "INSERT INTO " + t + "kinds (name, qty) VALUES ('sp-before', 3)");
                Savepoint sp = c.setSavepoint("sp1");
                update(c, "tx insert", "INSERT INTO " + t + "kinds (name, qty) VALUES ('sp-after', 4)");
                c.rollback(sp);
                Savepoint sp2 = c.setSavepoint();
                update(c, "tx insert", "INSERT INTO " + t + "kinds (name, qty) VALUES ('sp2-after', 5)");
                c.releaseSavepoint(sp2);
                c.commit();
                c.setAutoCommit(true);
            } catch (SQLException e) {
                error("tx", e);
                try {
                    c.rollback();
                    c.setAutoCommit(true);
                } catch (SQLException again) {
                    error("tx end", again);
                }
            }
            query(c, "tx rows", "SELECT name, qty FROM " + t + "kinds WHERE name LIKE 'tx-%' OR name LIKE 'sp%' ORDER BY name");
        }

        // Results the proxy merges on a sharded database (aggregates, GROUP BY, ORDER BY with
        // LIMIT, DISTINCT, a join with a broadcast table): their values and column metadata.
        String[] merged = {
            "SELECT COUNT(*), COUNT(price), SUM(price), AVG(price), AVG(qty), SUM(qty), MAX(seen), MIN(name),"
                + " MAX(big), MIN(born) FROM " + t + "kinds",
            "SELECT flag, COUNT(*) AS n, SUM(qty) AS total, AVG(price) AS mean"
                + " FROM " + t + "kinds GROUP BY flag ORDER BY flag",
            "SELECT name, qty, price FROM " + t + "kinds ORDER BY qty DESC, name LIMIT 3",
            "SELECT DISTINCT qty FROM " + t + "kinds ORDER BY qty",
            "SELECT name, qty * 2 AS dbl, CAST(price AS CHAR) AS txt, price / 3 AS third FROM " + t + "kinds WHERE price IS NOT NULL ORDER BY name, qty",
        };
        for (String options : new String[] {"useServerPrepStmts=false", "useServerPrepStmts=true"}) {
            String tag = options.endsWith("true") ? "server" : "client";
            try (Connection c = open(url, options, user, password)) {
                for (int i = 0; i < merged.length; i++) {
                    try (PreparedStatement ps = c.prepareStatement(merged[i]); ResultSet rs = ps.executeQuery()) {
                        columns("merged rsmd " + i + " " + tag, rs.getMetaData());
                        rows("merged " + i + " " + tag, rs);
                    } catch (SQLException e) {
                        error("merged " + i + " " + tag, e);
                    }
                }
                // Hibernate's pagination: LIMIT with parameters (a server-side prepared
                // statement keeps them parameters; Connector/J's client-side one writes them in).
                try (PreparedStatement ps = c.prepareStatement("SELECT name FROM " + t + "kinds ORDER BY name LIMIT ?, ?")) {
                    ps.setInt(1, 1);
                    ps.setInt(2, 2);
                    rows("merged limit ? " + tag, ps.executeQuery());
                } catch (SQLException e) {
                    error("merged limit ? " + tag, e);
                }
                // Aggregates a sharded database does not merge (README: refused with 1235).
                query(c, "merged refused bit_or std " + tag, "SELECT BIT_OR(qty), STD(qty) FROM " + t + "kinds");
                query(c, "merged refused group_concat " + tag,
                        "SELECT GROUP_CONCAT(name ORDER BY name) FROM " + t + "kinds GROUP BY flag ORDER BY flag");
            } catch (SQLException e) {
                error("merged " + tag, e);
            }
        }

        // Update counts: matched rows (Connector/J's default, CLIENT_FOUND_ROWS) or changed rows
        // (useAffectedRows=true), on one partition and on several; session options that
        // change what the session reads (time zone, sql_mode through sessionVariables).
        String[] countOptions = {"", "useAffectedRows=true",
            "serverTimezone=UTC&sessionVariables=sql_mode='ANSI_QUOTES,STRICT_TRANS_TABLES'"};
        for (String options : countOptions) {
            String tag = "counts " + options;
            try (Connection c = open(url, options, user, password)) {
                update(c, tag + " unchanged one", "UPDATE " + t + "kinds SET qty = qty WHERE name = 'stmt'");
                update(c, tag + " unchanged many", "UPDATE " + t + "kinds SET qty = qty WHERE qty IS NOT NULL");
                update(c, tag + " changed many", "UPDATE " + t + "kinds SET note = CONCAT('n', qty) WHERE qty < 3");
                update(c, tag + " upsert same", "INSERT INTO " + t + "parent VALUES (1, 'one') ON DUPLICATE KEY UPDATE label = 'one'");
                update(c, tag + " upsert changed", "INSERT INTO " + t + "parent VALUES (1, 'uno') ON DUPLICATE KEY UPDATE label = VALUES(label)");
                update(c, tag + " upsert back", "INSERT INTO " + t + "parent VALUES (1, 'one') ON DUPLICATE KEY UPDATE label = VALUES(label)");
                update(c, tag + " delete none", "DELETE FROM " + t + "kinds WHERE qty > 1000");
                query(c, tag + " session", "SELECT @@time_zone, @@sql_mode LIKE '%ANSI_QUOTES%'");
                if (options.contains("ANSI_QUOTES")) {
                    query(c, tag + " ansi", "SELECT \"label\" FROM \"" + t + "parent\" WHERE \"id\" = 2");
                }
            } catch (SQLException e) {
                error(tag, e);
            }
        }

        // The queries DBeaver's MySQL/MariaDB plugin and Hibernate's schema tools send themselves,
        // as text and as server-side prepared statements (the schema a parameter).
        String[] catalogQueries = {
            "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, ENGINE, ROW_FORMAT, TABLE_COLLATION, TABLE_COMMENT"
                + " FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME",
            "SELECT * FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'kinds'"
                + " ORDER BY ORDINAL_POSITION",
            "SELECT CONSTRAINT_NAME, TABLE_NAME, COLUMN_NAME, REFERENCED_TABLE_SCHEMA, REFERENCED_TABLE_NAME,"
                + " REFERENCED_COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = ?"
                + " ORDER BY TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION",
            "SELECT CONSTRAINT_NAME, TABLE_NAME, CONSTRAINT_TYPE FROM information_schema.TABLE_CONSTRAINTS"
                + " WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, CONSTRAINT_NAME",
            "SELECT CONSTRAINT_NAME, UNIQUE_CONSTRAINT_NAME, UPDATE_RULE, DELETE_RULE, TABLE_NAME,"
                + " REFERENCED_TABLE_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ?",
            "SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME, NULLABLE, INDEX_TYPE"
                + " FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ?"
                + " ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX",
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'SEQUENCE'",
            "SELECT TABLE_NAME, TABLE_SCHEMA = ? FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
                + " AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
            "SELECT TABLE_NAME, VIEW_DEFINITION, CHECK_OPTION, IS_UPDATABLE FROM information_schema.VIEWS"
                + " WHERE TABLE_SCHEMA = ?",
            "SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
            "SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?",
            "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?",
        };
        for (String options : new String[] {"useServerPrepStmts=false", "useServerPrepStmts=true"}) {
            String tag = options.endsWith("true") ? "server" : "client";
            try (Connection c = open(url, options, user, password)) {
                for (int i = 0; i < catalogQueries.length; i++) {
                    try (PreparedStatement ps = c.prepareStatement(catalogQueries[i])) {
                        ps.setString(1, database);
                        try (ResultSet rs = ps.executeQuery()) {
                            if (i == 1) {
                                columns("catalog rsmd " + tag, rs.getMetaData());
                            }
                            rows("catalog " + i + " " + tag, rs);
                        }
                    } catch (SQLException e) {
                        error("catalog " + i + " " + tag, e);
                    }
                }
                query(c, "show full tables " + tag, "SHOW FULL TABLES FROM `" + database + "`");
                query(c, "show variables " + tag, "SHOW VARIABLES LIKE 'lower_case_table_names'");
                query(c, "show collation " + tag, "SHOW COLLATION LIKE 'utf8mb4_general_ci'");
                query(c, "show index " + tag, "SHOW INDEX FROM child");
                query(c, "show columns " + tag, "SHOW FULL COLUMNS FROM kinds");
            } catch (SQLException e) {
                error("catalog " + tag, e);
            }
        }

        // What connection pools (HikariCP), Spring and Flyway do with a connection.
        for (String options : new String[] {"assureReadOnly=true",
                "assureReadOnly=true&useServerPrepStmts=true&allowMultiQueries=true", "useCompression=true"}) {
            String tag = "pool " + options;
            try (Connection c = open(url, options, user, password)) {
                c.setTransactionIsolation(Connection.TRANSACTION_READ_COMMITTED);
                out(tag + " isolation", "level=" + c.getTransactionIsolation());
                query(c, tag + " isolation read", "SELECT @@tx_isolation, @@tx_read_only");
                c.setReadOnly(true);
                query(c, tag + " read only", "SELECT COUNT(*), @@tx_read_only FROM " + t + "parent");
                update(c, tag + " read only write", "INSERT INTO " + t + "parent VALUES (9, 'nine')");
                c.setReadOnly(false);
                update(c, tag + " read write", "DELETE FROM " + t + "parent WHERE id = 9");
                c.setTransactionIsolation(Connection.TRANSACTION_REPEATABLE_READ);
                query(c, tag + " isolation back", "SELECT @@tx_isolation, @@tx_read_only");
                c.setCatalog(c.getCatalog());
                out(tag + " catalog", c.getCatalog() + " schema=" + c.getSchema());
                try (Statement s = c.createStatement()) {
                    s.setQueryTimeout(5);
                    rows(tag + " query timeout", s.executeQuery("SELECT label FROM " + t + "parent ORDER BY id"));
                    s.setQueryTimeout(0);
                    s.setMaxRows(1);
                    rows(tag + " max rows", s.executeQuery("SELECT label FROM " + t + "parent ORDER BY id"));
                    s.setMaxRows(0);
                    rows(tag + " after max rows", s.executeQuery("SELECT COUNT(*) FROM " + t + "parent"));
                    s.setFetchSize(Integer.MIN_VALUE);
                    rows(tag + " streamed", s.executeQuery("SELECT name FROM " + t + "kinds ORDER BY name"));
                    s.setFetchSize(0);
                    rows(tag + " warnings query", s.executeQuery("SELECT 1/0"));
                    for (java.sql.SQLWarning w = s.getWarnings(); w != null; w = w.getNextWarning()) {
                        out(tag + " warnings", w.getSQLState() + " " + w.getErrorCode() + " " + w.getMessage());
                    }
                    rows(tag + " lock", s.executeQuery("SELECT GET_LOCK('flyway-" + t + "1', 10), RELEASE_LOCK('flyway-" + t + "1')"));
                    rows(tag + " session read", s.executeQuery("SELECT @@foreign_key_checks, VERSION() LIKE '10.%', DATABASE(), USER() IS NOT NULL"));
                    if (options.contains("allowMultiQueries")) {
                        boolean isResult = s.execute("SELECT 1 AS a; SELECT label FROM " + t + "parent WHERE id = 2; UPDATE " + t + "parent SET label = label WHERE id = 1");
                        int guard = 0;
                        while (guard++ < 10) {
                            if (isResult) {
                                rows(tag + " multi", s.getResultSet());
                            } else {
                                int n = s.getUpdateCount();
                                if (n == -1) {
                                    break;
                                }
                                out(tag + " multi", "count=" + n);
                            }
                            isResult = s.getMoreResults();
                        }
                    }
                } catch (SQLException e) {
                    error(tag + " statements", e);
                }
            } catch (SQLException e) {
                error(tag, e);
            }
        }

        // PreparedStatement, client-side and server-side; batches.
        for (String options : new String[] {"useServerPrepStmts=true", "useServerPrepStmts=false"}) {
            String tag = options.endsWith("true") ? "server" : "client";
            try (Connection c = open(url, options, user, password)) {
                try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + t + "kinds (name, qty, price, born, seen, flag, note)"
                        + " VALUES (?, ?, ?, ?, ?, ?, ?)", Statement.RETURN_GENERATED_KEYS)) {
                    ps.setString(1, "ps-" + tag);
                    ps.setInt(2, 7);
                    ps.setBigDecimal(3, new BigDecimal("12.34"));
                    ps.setDate(4, Date.valueOf("2023-05-06"));
                    ps.setTimestamp(5, Timestamp.valueOf("2023-05-06 07:08:09.123"));
                    ps.setBoolean(6, true);
                    ps.setNull(7, Types.VARCHAR);
                    out("ps insert " + tag, "count=" + ps.executeUpdate());
                    readBack(c, "ps key row " + tag, t + "kinds", keys("ps keys " + tag, ps.getGeneratedKeys()));
                } catch (SQLException e) {
                    error("ps insert " + tag, e);
                }
                try (PreparedStatement ps = c.prepareStatement("SELECT name, qty, price, born, seen, flag, note FROM "
                        + t + "kinds WHERE name = ? AND qty > ?")) {
                    ps.setString(1, "ps-" + tag);
                    ps.setLong(2, 0);
                    try (ResultSet rs = ps.executeQuery()) {
                        columns("ps rsmd " + tag, rs.getMetaData());
                        rows("ps select " + tag, rs);
                    }
                    ResultSetMetaData before = ps.getMetaData();
                    out("ps metadata before " + tag, before == null ? "null" : "columns=" + before.getColumnCount());
                    out("ps parameters " + tag, "count=" + ps.getParameterMetaData().getParameterCount());
                } catch (SQLException e) {
                    error("ps select " + tag, e);
                }
                try (PreparedStatement ps = c.prepareStatement("SELECT id FROM " + t + "kinds WHERE id = ?")) {
                    // Each generated id is read back by key (the sharded table's route by id).
                    try (Statement s = c.createStatement();
                         ResultSet rs = s.executeQuery("SELECT id, name FROM " + t + "kinds ORDER BY id")) {
                        int found = 0;
                        int all = 0;
                        while (rs.next()) {
                            ps.setLong(1, rs.getLong(1));
                            all++;
                            try (ResultSet one = ps.executeQuery()) {
                                if (one.next() && one.getLong(1) == rs.getLong(1)) {
                                    found++;
                                }
                            }
                        }
                        out("ps by key " + tag, "found=" + found + " of " + all);
                    }
                } catch (SQLException e) {
                    error("ps by key " + tag, e);
                }
            } catch (SQLException e) {
                error("ps " + tag, e);
            }
        }

        String[] batchOptions = {
            "rewriteBatchedStatements=true", "rewriteBatchedStatements=false",
            "useBulkStmts=true", "useBulkStmts=true&useServerPrepStmts=true",
            "useBulkStmts=false&useServerPrepStmts=true",
        };
        for (String options : batchOptions) {
            String tag = "batch " + options;
            try (Connection c = open(url, options, user, password)) {
                try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + t + "kinds (name, qty, price) VALUES (?, ?, ?)",
                        Statement.RETURN_GENERATED_KEYS)) {
                    for (int i = 0; i < 5; i++) {
                        ps.setString(1, tag);
                        ps.setInt(2, i);
                        ps.setBigDecimal(3, new BigDecimal(i + ".25"));
                        ps.addBatch();
                    }
                    int[] counts = ps.executeBatch();
                    StringBuilder b = new StringBuilder();
                    for (int n : counts) {
                        b.append(n).append(' ');
                    }
                    out(tag, "counts=" + b.toString().trim());
                    readBack(c, tag + " key rows", t + "kinds", keys(tag + " keys", ps.getGeneratedKeys()));
                } catch (SQLException e) {
                    error(tag, e);
                }
                try (Statement s = c.createStatement()) {
                    s.addBatch("INSERT INTO " + t + "kinds (name, qty) VALUES ('" + tag + " stmt', 1)");
                    s.addBatch("INSERT INTO " + t + "kinds (name, qty) VALUES ('" + tag + " stmt', 2)");
                    s.addBatch("UPDATE " + t + "kinds SET qty = qty + 10 WHERE name = '" + tag + " stmt'");
                    int[] counts = s.executeBatch();
                    StringBuilder b = new StringBuilder();
                    for (int n : counts) {
                        b.append(n).append(' ');
                    }
                    out(tag + " statement batch", "counts=" + b.toString().trim());
                } catch (SQLException e) {
                    error(tag + " statement batch", e);
                }
                query(c, tag + " rows", "SELECT name, qty, price FROM " + t + "kinds WHERE name LIKE '" + tag + "%' ORDER BY qty");
            } catch (SQLException e) {
                error(tag, e);
            }
        }

        // Flyway's migration run: its history table made, a migration applied and recorded with
        // prepared statements, the history read back; then dropped (a single table when sharded).
        try (Connection c = open(url, "", user, password)) {
            update(c, "flyway create", "CREATE TABLE `flyway_schema_history` (`installed_rank` INT NOT NULL,"
                    + " `version` VARCHAR(50), `description` VARCHAR(200) NOT NULL, `type` VARCHAR(20) NOT NULL,"
                    + " `script` VARCHAR(1000) NOT NULL, `checksum` INT, `installed_by` VARCHAR(100) NOT NULL,"
                    + " `installed_on` TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, `execution_time` INT NOT NULL,"
                    + " `success` BOOL NOT NULL, CONSTRAINT `flyway_schema_history_pk` PRIMARY KEY (`installed_rank`))"
                    + " ENGINE=InnoDB");
            update(c, "flyway index", "CREATE INDEX `flyway_schema_history_s_idx` ON `flyway_schema_history` (`success`)");
            c.setAutoCommit(false);
            update(c, "flyway migrate", "ALTER TABLE " + t + "parent ADD COLUMN extra INT NULL");
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO `flyway_schema_history` (`installed_rank`, `version`,"
                    + " `description`, `type`, `script`, `checksum`, `installed_by`, `execution_time`, `success`)"
                    + " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")) {
                ps.setInt(1, 1);
                ps.setString(2, "1");
                ps.setString(3, "add extra");
                ps.setString(4, "SQL");
                ps.setString(5, "V1__add_extra.sql");
                ps.setInt(6, 12345);
                ps.setString(7, "flyway");
                ps.setInt(8, 3);
                ps.setBoolean(9, true);
                out("flyway record", "count=" + ps.executeUpdate());
            } catch (SQLException e) {
                error("flyway record", e);
            }
            c.commit();
            c.setAutoCommit(true);
            query(c, "flyway history", "SELECT `installed_rank`, `version`, `description`, `type`, `script`, `checksum`,"
                    + " `installed_by`, `execution_time`, `success` FROM `flyway_schema_history`"
                    + " WHERE `installed_rank` > 0 ORDER BY `installed_rank`");
            rows("flyway columns", c.getMetaData().getColumns(c.getCatalog(), null, t + "parent", "%"));
            update(c, "flyway undo", "ALTER TABLE " + t + "parent DROP COLUMN extra");
            update(c, "flyway drop", "DROP TABLE `flyway_schema_history`");
        } catch (SQLException e) {
            error("flyway", e);
        }
    }
}
