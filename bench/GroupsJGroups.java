/* JGroups side of synod-bench-groups: N members (JChannels) in this one
 * JVM, on TCP over 127.0.0.1 with TCPPING discovery and SEQUENCER for
 * total order, JGroups 2.12 (Debian's libjgroups-java). Workloads, each
 * printed as one "jg ..." line on stdout for the C program to parse:
 *
 *   join:    members join one at a time up to `join_members`; for each join,
 *            the time from connect() to the view holding the joiner at every
 *            member. Then the last joiner leaves and joins again `repeat`
 *            times (the view change at `join_members`).
 *   latency: 3 members, one sends `rate` messages/s of `size` bytes, each
 *            carrying System.nanoTime() (CLOCK_MONOTONIC); the latency of
 *            every delivery at every member.
 *   flood:   3 members, `senders` threads (spread over the 3 channels) send
 *            as fast as flow control lets them; deliveries per second at
 *            each member.
 *
 * Usage: java -cp jgroups.jar:DIR GroupsJGroups WORKLOAD PORT [k=v ...] */
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.jgroups.Address;
import org.jgroups.JChannel;
import org.jgroups.Message;
import org.jgroups.ReceiverAdapter;
import org.jgroups.View;

public class GroupsJGroups {
  static int port;
  static int portRange = 40;
  static int size = 100;
  static double rate = 1000, seconds = 2, warmup = 0.5;
  static int senders = 1, joinMembers = 16, repeat = 3;

  static String props() {
    return "TCP(bind_addr=127.0.0.1;bind_port=" + port + ";port_range="
        + portRange + ";loopback=true;enable_bundling=true;"
        + "use_send_queues=true;sock_conn_timeout=300;"
        + "thread_pool.enabled=true;thread_pool.min_threads=2;"
        + "thread_pool.max_threads=8;thread_pool.queue_enabled=true;"
        + "thread_pool.queue_max_size=10000;"
        + "thread_pool.rejection_policy=run;"
        + "oob_thread_pool.enabled=true;oob_thread_pool.max_threads=8;"
        + "oob_thread_pool.rejection_policy=run):"
        + "TCPPING(timeout=1000;initial_hosts=127.0.0.1[" + port
        + "];port_range=" + portRange + ";num_initial_members=1):"
        + "MERGE2(min_interval=10000;max_interval=30000):FD_SOCK:"
        + "FD(timeout=3000;max_tries=3):VERIFY_SUSPECT(timeout=1500):"
        + "BARRIER:pbcast.NAKACK(use_mcast_xmit=false;gc_lag=0;"
        + "retransmit_timeout=300,600,1200;discard_delivered_msgs=true):"
        + "UNICAST(timeout=300,600,1200):"
        + "pbcast.STABLE(stability_delay=1000;desired_avg_gossip=50000;"
        + "max_bytes=4M):"
        + "pbcast.GMS(print_local_addr=false;join_timeout=3000;"
        + "view_bundling=false):SEQUENCER:"
        + "UFC(max_credits=2M;min_threshold=0.4):"
        + "MFC(max_credits=2M;min_threshold=0.4):FRAG2(frag_size=60K)";
  }

  /* One member: its channel, the size of its latest view and when it
   * came, and its deliveries. */
  static class Member extends ReceiverAdapter {
    JChannel ch;
    volatile int viewSize;
    volatile long viewNs;
    final AtomicLong delivered = new AtomicLong();
    volatile long tMeasure = Long.MAX_VALUE, tEnd = Long.MAX_VALUE;
    final AtomicLong inWindow = new AtomicLong();
    long[] lat = new long[1 << 22];
    int latN;

    public void viewAccepted(View v) {
      viewNs = System.nanoTime();
      viewSize = v.size();
    }

    public void receive(Message msg) {
      long t = System.nanoTime();
      delivered.incrementAndGet();
      if (t < tMeasure || t >= tEnd) return;
      inWindow.incrementAndGet();
      byte[] b = msg.getBuffer();
      long sent = ByteBuffer.wrap(b, 0, 8).getLong();
      synchronized (this) {
        if (latN < lat.length) lat[latN++] = t - sent;
      }
    }
  }

  static Member join(String group) throws Exception {
    Member m = new Member();
    m.ch = new JChannel(props());
    m.ch.setReceiver(m);
    m.ch.connect(group);
    return m;
  }

  /* Waits (bounded) until every member's view has n members; returns the
   * latest time one of them installed it, or -1 on timeout. */
  static long waitView(List<Member> ms, int n) throws Exception {
    long deadline = System.nanoTime() + 20_000_000_000L;
    while (System.nanoTime() < deadline) {
      boolean all = true;
      long last = 0;
      for (Member m : ms) {
        if (m.viewSize != n) all = false;
        last = Math.max(last, m.viewNs);
      }
      if (all) return last;
      Thread.sleep(0, 200_000);
    }
    return -1;
  }

  static double median(List<Double> xs) {
    if (xs.isEmpty()) return -1;
    Double[] a = xs.toArray(new Double[0]);
    Arrays.sort(a);
    return a[a.length / 2];
  }

  static void workloadJoin() throws Exception {
    List<Member> ms = new ArrayList<>();
    ms.add(join("gb-join"));
    List<Double> joins = new ArrayList<>();
    double first = -1;
    for (int i = 1; i < joinMembers; i++) {
      long t0 = System.nanoTime();
      ms.add(join("gb-join"));
      long t1 = waitView(ms, i + 1);
      double ms1 = t1 < 0 ? -1 : (t1 - t0) / 1e6;
      if (i == 3) first = ms1;
      joins.add(ms1);
    }
    List<Double> big = new ArrayList<>(), leave = new ArrayList<>();
    for (int r = 0; r < repeat; r++) {
      Member last = ms.remove(ms.size() - 1);
      long t0 = System.nanoTime();
      last.ch.close();
      long t1 = waitView(ms, joinMembers - 1);
      leave.add(t1 < 0 ? -1 : (t1 - t0) / 1e6);
      t0 = System.nanoTime();
      ms.add(join("gb-join"));
      t1 = waitView(ms, joinMembers);
      big.add(t1 < 0 ? -1 : (t1 - t0) / 1e6);
    }
    System.out.printf("jg join join4_ms=%.3f join_p50_ms=%.3f join%d_p50_ms=%.3f"
            + " leave%d_p50_ms=%.3f%n",
        first, median(joins), joinMembers, median(big), joinMembers,
        median(leave));
    // the JVM exits next; no orderly leave of every member needed
  }

  static void workloadTraffic(boolean paced) throws Exception {
    List<Member> ms = new ArrayList<>();
    for (int i = 0; i < 3; i++) ms.add(join("gb-traffic"));
    if (waitView(ms, 3) < 0) throw new Exception("no view of 3");
    long start = System.nanoTime() + 100_000_000L;
    long tMeasure = start + (long) (warmup * 1e9);
    long tEnd = tMeasure + (long) (seconds * 1e9);
    for (Member m : ms) {
      m.tMeasure = tMeasure;
      m.tEnd = tEnd;
    }
    Thread[] th = new Thread[paced ? 1 : senders];
    for (int s = 0; s < th.length; s++) {
      final JChannel ch = ms.get(s % 3).ch;
      th[s] = new Thread(() -> {
        try {
          byte[] b = new byte[size];
          long next = start;
          while (System.nanoTime() < start) Thread.sleep(1);
          while (true) {
            long t = System.nanoTime();
            if (t >= tEnd) break;
            if (paced) {
              if (t < next) {
                long d = next - t;
                Thread.sleep(d / 1_000_000, (int) (d % 1_000_000));
                continue;
              }
              next += (long) (1e9 / rate);
            }
            ByteBuffer.wrap(b, 0, 8).putLong(System.nanoTime());
            ch.send(new Message(null, null, b));
          }
        } catch (Exception e) {
          System.err.println("sender: " + e);
        }
      });
      th[s].start();
    }
    /* A sender blocked in flow control (credits that never come back) is
     * left behind after 3 s and counted as stalled. */
    long deadline = tEnd + 3_000_000_000L;
    int stalled = 0;
    for (Thread t : th) {
      t.join(Math.max(1, (deadline - System.nanoTime()) / 1_000_000));
      if (t.isAlive()) stalled++;
    }
    Thread.sleep(1000);
    long[] all = new long[0];
    double perS = Double.MAX_VALUE;
    for (Member m : ms) {
      synchronized (m) {
        long[] a = Arrays.copyOf(all, all.length + m.latN);
        System.arraycopy(m.lat, 0, a, all.length, m.latN);
        all = a;
      }
      perS = Math.min(perS, m.inWindow.get() / seconds);
    }
    Arrays.sort(all);
    double p50 = all.length == 0 ? -1 : all[all.length / 2] / 1e6;
    double p99 = all.length == 0 ? -1 : all[(int) ((all.length - 1) * 0.99)] / 1e6;
    System.out.printf("jg %s senders=%d size=%d per_s=%.1f p50_ms=%.3f"
            + " p99_ms=%.3f samples=%d stalled=%d%n",
        paced ? "latency" : "flood", th.length, size, perS, p50, p99,
        all.length, stalled);
    // the JVM exits next; no orderly leave of every member needed
  }

  /* Ends the JVM after ms with a "jg WORKLOAD timeout=1" line: a join
   * that never completes or a view that never comes must not hang the
   * bench. */
  static void watchdog(String what, long ms) {
    Thread t = new Thread(() -> {
      try {
        Thread.sleep(ms);
      } catch (InterruptedException e) {
        return;
      }
      System.out.println("jg " + what + " timeout=1");
      System.out.flush();
      Runtime.getRuntime().halt(3);
    });
    t.setDaemon(true);
    t.start();
  }

  public static void main(String[] args) throws Exception {
    String w = args[0];
    port = Integer.parseInt(args[1]);
    for (int i = 2; i < args.length; i++) {
      String[] kv = args[i].split("=", 2);
      switch (kv[0]) {
        case "size": size = Integer.parseInt(kv[1]); break;
        case "rate": rate = Double.parseDouble(kv[1]); break;
        case "seconds": seconds = Double.parseDouble(kv[1]); break;
        case "warmup": warmup = Double.parseDouble(kv[1]); break;
        case "senders": senders = Integer.parseInt(kv[1]); break;
        case "join_members": joinMembers = Integer.parseInt(kv[1]); break;
        case "repeat": repeat = Integer.parseInt(kv[1]); break;
        default: throw new IllegalArgumentException(args[i]);
      }
    }
    watchdog(w, w.equals("join") ? 90_000 : (long) ((warmup + seconds) * 1000) + 30_000);
    switch (w) {
      case "join": workloadJoin(); break;
      case "latency": workloadTraffic(true); break;
      case "flood": workloadTraffic(false); break;
      default: throw new IllegalArgumentException(w);
    }
    System.out.flush();
    System.exit(0);
  }
}
