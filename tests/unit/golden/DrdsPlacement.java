// The golden placements of tests/unit/test_placement.py, computed on the JVM the way
// PolarDB-X 1.0 (DRDS) evaluates its rules, independently of shardgate's Python:
//
//   polardbx-optimizer/.../utils/newrule/IntegerRuleGen.java (HASH, integer column):
//     same column at both levels: ((#k,1,D*T#).longValue().abs() % (D*T)).intdiv(T) / ... % (D*T)
//     database only or different keys: (#k,1,D#).longValue().abs() % D, (#k,1,T#)...abs() % T
//   polardbx-optimizer/.../utils/newrule/StringRuleGen.java (HASH, string column):
//     ((#k,1,D*T#).hashCode().abs().longValue() % (D*T)).intdiv(T), ... % D, ... % T
//   polardbx-rule/.../groovy/GroovyStaticMethod.java (UNI_HASH):
//     uni_hash(Number|String v, ...) = hashPartitionIndex((long) v.hashCode(), D, T, ...):
//     h = Math.abs(h); db = h % D; table within the database = (h / D) % T
//
// Groovy's %, intdiv and abs() on Integer/Long are Java's %, / and Math.abs. An integer key
// is a Long (Long.hashCode); beyond the long range (BIGINT UNSIGNED) a BigInteger, whose
// longValue() wraps and whose hashCode() is BigInteger's. A negative index (only from
// Long.MIN_VALUE and Integer.MIN_VALUE under HASH) is printed as ERR: no such partition.
//
// Run: javac -d OUT DrdsPlacement.java && java -cp OUT DrdsPlacement
import java.math.BigInteger;

public class DrdsPlacement {
    static final String[] INTS = {"0", "1", "7", "15", "-1", "-5", "-15", "123456789",
        "2147483647", "-2147483648", "2147483648", "4294967295", "4294967296", "-4294967296",
        "9223372036854775807", "-9223372036854775808", "-9223372036854775807",
        "9223372036854775808", "18446744073709551615"};
    static final String[] STRINGS = {"", "a", "abc", "ABC", "Abc", "abc ", "hello world",
        "polygenelubricants", "GydZG_", "DESIGNING WORKHOUSES", "Aa", "BB", "15", "1234567890",
        "\u4e2d\u6587", "\u00e9", "e\u0301", "\ud83d\ude00", "a\ud83d\ude00b", "\ud834\udd1e"};
    // database function, table function ("-": none), D, T; the same column at both levels
    static final Object[][] RULES = {
        {"HASH", "-", 8, 1}, {"HASH", "-", 6, 1}, {"HASH", "HASH", 4, 4}, {"HASH", "HASH", 4, 3},
        {"UNI_HASH", "-", 8, 1}, {"UNI_HASH", "UNI_HASH", 4, 4}, {"UNI_HASH", "UNI_HASH", 6, 3},
        {"HASH", "UNI_HASH", 4, 4}, {"UNI_HASH", "HASH", 4, 3},
    };
    // different columns: (database function, table function, D, T), then (a, b) pairs
    static final Object[][] PAIR_RULES = {{"HASH", "HASH", 4, 4}, {"UNI_HASH", "UNI_HASH", 4, 3}};
    static final long[][] PAIRS = {{15, 6}, {-7, 9}, {123456789, 987654321}, {0, -1},
        {5, 2147483648L}};

    static long hashH(Object v) {
        if (v instanceof String) return (long) Math.abs(((String) v).hashCode());
        return Math.abs(((BigInteger) v).longValue());
    }

    static long uniH(Object v) {
        long hc;
        if (v instanceof String) {
            hc = ((String) v).hashCode();
        } else {
            BigInteger b = (BigInteger) v;
            hc = b.bitLength() < 64 ? Long.valueOf(b.longValue()).hashCode() : b.hashCode();
        }
        return Math.abs(hc);
    }

    static long h(String fn, Object v) {
        return fn.equals("HASH") ? hashH(v) : uniH(v);
    }

    static String place(String dbFn, String tbFn, boolean same, int d, int t, Object a, Object b) {
        long db;
        long g;
        if (tbFn.equals("-")) {
            db = h(dbFn, a) % d;
            g = db;
        } else if (same && dbFn.equals("HASH") && tbFn.equals("HASH")) {
            g = hashH(a) % ((long) d * t);
            db = g / t;
        } else {
            db = h(dbFn, a) % d;
            long within = tbFn.equals("UNI_HASH") ? (uniH(b) / d) % t : hashH(b) % t;
            if (within < 0) return "ERR";
            g = db * t + within;
        }
        return db < 0 || g < 0 ? "ERR" : db + "." + g;
    }

    static String quoted(String s) {
        StringBuilder out = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') out.append('\\').append(c);
            else if (c >= 0x20 && c < 0x7f) out.append(c);
            else out.append(String.format("\\u%04x", (int) c));
        }
        return out.append('"').toString();
    }

    public static void main(String[] args) {
        for (String s : STRINGS) System.out.println("hash str " + quoted(s) + " " + s.hashCode());
        for (String i : INTS) {
            BigInteger b = new BigInteger(i);
            String longHash = b.bitLength() < 64 ? "" + Long.valueOf(b.longValue()).hashCode() : "-";
            System.out.println("hash int " + i + " " + longHash + " " + b.hashCode() + " " + b.longValue());
        }
        for (Object[] r : RULES) {
            System.out.println("rule " + r[0] + "/" + r[1] + "/" + r[2] + "/" + r[3]);
        }
        for (String i : INTS) row("int " + i, new BigInteger(i));
        for (String s : STRINGS) row("str " + quoted(s), s);
        for (Object[] r : PAIR_RULES) {
            for (long[] p : PAIRS) {
                System.out.println("pair " + r[0] + "/" + r[1] + "/" + r[2] + "/" + r[3] + " " + p[0] + " "
                    + p[1] + " " + place((String) r[0], (String) r[1], false, (Integer) r[2],
                    (Integer) r[3], BigInteger.valueOf(p[0]), BigInteger.valueOf(p[1])));
            }
        }
    }

    static void row(String label, Object v) {
        StringBuilder line = new StringBuilder("place " + label);
        for (Object[] r : RULES) {
            line.append(" ").append(place((String) r[0], (String) r[1], true, (Integer) r[2],
                (Integer) r[3], v, v));
        }
        System.out.println(line);
    }
}
