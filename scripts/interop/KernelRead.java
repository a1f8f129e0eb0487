// A reader of Delta tables that shares no code with delta-rs (the library deltadrop writes with):
// Delta Kernel Java (io.delta:delta-kernel-api / delta-kernel-defaults, from Maven Central), the
// Delta project's own reference implementation of the protocol. Prints the latest snapshot of
// each table given: one line `#schema name:type<TAB>...`, then one JSON object per live row, every
// value in a canonical text form that scripts/interop/kernel_check.py compares with what Python
// `deltalake` reads: integers and decimals as written (`12.50`), doubles via
// Double.toString, dates as days since 1970-01-01, timestamps as microseconds since the epoch
// (UTC), booleans true/false, null as null; a struct or an array as compact JSON text of those
// forms (`{"city":"Recife","zip":"50000"}`, `["1","2"]`), members by their names in the table.
//
//   java -cp 'JARS/*' scripts/interop/KernelRead.java TABLE_PATH
//
// Run as a single-file source program (Java 11+): nothing to build or commit beside it.

import io.delta.kernel.Scan;
import io.delta.kernel.Snapshot;
import io.delta.kernel.Table;
import io.delta.kernel.data.ColumnVector;
import io.delta.kernel.data.ColumnarBatch;
import io.delta.kernel.data.FilteredColumnarBatch;
import io.delta.kernel.data.Row;
import io.delta.kernel.defaults.engine.DefaultEngine;
import io.delta.kernel.engine.Engine;
import io.delta.kernel.internal.InternalScanFileUtils;
import io.delta.kernel.internal.data.ScanStateRow;
import io.delta.kernel.internal.util.Utils;
import io.delta.kernel.types.*;
import io.delta.kernel.utils.CloseableIterator;
import io.delta.kernel.utils.FileStatus;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Optional;
import org.apache.hadoop.conf.Configuration;

public class KernelRead {
  public static void main(String[] args) throws Exception {
    PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
    Engine engine = DefaultEngine.create(new Configuration());
    Snapshot snap = Table.forPath(engine, args[0]).getLatestSnapshot(engine);
    StructType schema = snap.getSchema();
    StringBuilder head = new StringBuilder("#schema ");
    for (int i = 0; i < schema.length(); i++) {
      StructField f = schema.at(i);
      head.append(i == 0 ? "" : "\t").append(f.getName()).append(":").append(f.getDataType());
    }
    out.println(head);
    Scan scan = snap.getScanBuilder().build();
    Row state = scan.getScanState(engine);
    StructType physical = ScanStateRow.getPhysicalDataReadSchema(engine, state);
    long rows = 0;
    try (CloseableIterator<FilteredColumnarBatch> files = scan.getScanFiles(engine)) {
      while (files.hasNext()) {
        try (CloseableIterator<Row> fileRows = files.next().getRows()) {
          while (fileRows.hasNext()) {
            Row file = fileRows.next();
            FileStatus status = InternalScanFileUtils.getAddFileStatus(file);
            CloseableIterator<ColumnarBatch> data =
                engine
                    .getParquetHandler()
                    .readParquetFiles(
                        Utils.singletonCloseableIterator(status), physical, Optional.empty());
            try (CloseableIterator<FilteredColumnarBatch> logical =
                Scan.transformPhysicalData(engine, state, file, data)) {
              while (logical.hasNext()) {
                rows += print(out, logical.next());
              }
            }
          }
        }
      }
    }
    out.println("#rows " + rows);
    out.flush();
  }

  /** The live rows of one batch (its selection vector says which), one JSON object each. */
  static long print(PrintStream out, FilteredColumnarBatch fb) {
    ColumnarBatch b = fb.getData();
    Optional<ColumnVector> sel = fb.getSelectionVector();
    StructType schema = b.getSchema();
    long n = 0;
    for (int r = 0; r < b.getSize(); r++) {
      if (sel.isPresent() && (sel.get().isNullAt(r) || !sel.get().getBoolean(r))) {
        continue;
      }
      StringBuilder line = new StringBuilder("{");
      for (int c = 0; c < schema.length(); c++) {
        if (c > 0) {
          line.append(',');
        }
        line.append(json(schema.at(c).getName())).append(':');
        ColumnVector v = b.getColumnVector(c);
        line.append(v.isNullAt(r) ? "null" : json(text(v, schema.at(c).getDataType(), r)));
      }
      out.println(line.append('}'));
      n++;
    }
    return n;
  }

  /** A value's canonical text (see the header); `t` its type in the table's schema. */
  static String text(ColumnVector v, DataType t, int r) {
    if (t instanceof StructType) {
      StructType s = (StructType) t;
      StringBuilder o = new StringBuilder("{");
      for (int i = 0; i < s.length(); i++) {
        ColumnVector m = v.getChild(i);
        o.append(i == 0 ? "" : ",").append(json(s.at(i).getName())).append(':');
        o.append(m.isNullAt(r) ? "null" : json(text(m, s.at(i).getDataType(), r)));
      }
      return o.append('}').toString();
    }
    if (t instanceof ArrayType) {
      ColumnVector e = v.getArray(r).getElements();
      DataType et = ((ArrayType) t).getElementType();
      StringBuilder o = new StringBuilder("[");
      for (int i = 0; i < v.getArray(r).getSize(); i++) {
        o.append(i == 0 ? "" : ",").append(e.isNullAt(i) ? "null" : json(text(e, et, i)));
      }
      return o.append(']').toString();
    }
    if (t instanceof StringType) return v.getString(r);
    if (t instanceof LongType) return Long.toString(v.getLong(r));
    if (t instanceof IntegerType) return Integer.toString(v.getInt(r));
    if (t instanceof ShortType) return Short.toString(v.getShort(r));
    if (t instanceof ByteType) return Byte.toString(v.getByte(r));
    if (t instanceof DoubleType) return Double.toString(v.getDouble(r));
    if (t instanceof FloatType) return Float.toString(v.getFloat(r));
    if (t instanceof BooleanType) return Boolean.toString(v.getBoolean(r));
    if (t instanceof DecimalType) return v.getDecimal(r).toPlainString();
    if (t instanceof DateType) return Integer.toString(v.getInt(r));
    if (t instanceof TimestampType || t instanceof TimestampNTZType) {
      return Long.toString(v.getLong(r));
    }
    throw new IllegalArgumentException("type not compared: " + t);
  }

  static String json(String s) {
    StringBuilder o = new StringBuilder("\"");
    for (char ch : s.toCharArray()) {
      switch (ch) {
        case '"': o.append("\\\""); break;
        case '\\': o.append("\\\\"); break;
        case '\n': o.append("\\n"); break;
        case '\r': o.append("\\r"); break;
        case '\t': o.append("\\t"); break;
        default:
          if (ch < 0x20) o.append(String.format("\\u%04x", (int) ch));
          else o.append(ch);
      }
    }
    return o.append('"').toString();
  }
}
