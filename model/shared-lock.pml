/*
 * Semaphores (`limit: N`) and shared locks: holders that do not exclude each other, each with a record
 * of its own (a Lease), beside exclusive holders of the same name, who take the lock's lease L and then
 * wait until the records they found are gone. Checked exhaustively with SPIN by
 * test/protocol-model.test.ts; the bounds of each run are in docs/safety.md ("What the shared-lock
 * model covers").
 *
 * Model step                          protocol step
 * ----------------------------------  ------------------------------------------------------------------
 * writer: take L                      exclusive acquire: create L when absent (with the marker: M1), or
 *                                       compare-and-swap it when free or judged expired (the marker
 *                                       stays); the token is the revision of this write
 * writer: list the records            DRAIN, when the write was a create or L carried the marker: a
 *                                       consistent list after the write
 * writer: list again until drained    DRAIN: every listed record gone, or seen unchanged for duration +
 *                                       grace on the writer's clock, judged on that list; records created
 *                                       after the first list are not waited for
 * writer: renew, release, give up     compare-and-swap of L (renewals while draining too); a writer that
 *                                       releases, gives up or is past its deadline frees L if it is still
 *                                       as it last wrote it; once drained, any of its writes may drop the
 *                                       marker (M3)
 * reader: announce                    1: create the own record; its position is the create's revision
 * reader: check L                     2a, 2c, 2d: a consistent get of L; held and not judged expired:
 *                                       back off; held and judged expired: free it, check again; absent:
 *                                       create it free with the marker; free without the marker: add it;
 *                                       then go on (a shared holder holds here)
 * reader: list and count              2b, 2e (semaphores): a consistent list; hold when fewer than LIMIT
 *                                       records ahead (position < own) are live and not judged expired,
 *                                       else wait and check again
 * reader: back off                    2c: delete the own record, wait until L is seen free (or judged
 *                                       expired), announce again with a new record
 * reader: renew the record            compare-and-swap of the own record, while waiting or holding
 * reader: start over (M2)             a waiter whose record's deadline passed deletes it and announces
 *                                       again
 * reader: release                     4: delete the own record (under its resourceVersion)
 * controller                          deletes a free L (under its resourceVersion); with GC_FREE it also
 *                                       frees an L and deletes a record it has seen unchanged for
 *                                       duration + its grace (freeing a record is deleting it here: a
 *                                       freed record counts for nobody)
 *
 * The store: L and one record slot per reader, one global revision (every create and update takes the
 * next one; deletes take none here, since nothing compares them), consistent reads and lists, updates
 * and deletes under resourceVersion, creates that fail when the object exists. A reader that announces
 * again reuses its slot: a record it could not delete (changed by a renewal whose answer was lost) is
 * replaced then, as if the controller had deleted it; it has no valid owner. Only the order and
 * equality of revisions decide anything, so the model renames the revisions in use after every step
 * (renumber): runs that differ only in how many revisions went by are one state, and no run is cut
 * short by a bound on revisions.
 *
 * Writes of L apply and are answered in the step that sends them: their delays, lost answers and
 * read-backs are model/lease-lock.pml's subject (a read-back drains like a create). A renewal of a
 * record is sent, and at a later step applied with its answer, or applied with its answer lost (then a
 * holder counts its hold lost); an answer that comes later still only makes its sender know later, and
 * a write that never applies and is never answered is the same as no renewal. Writes that apply after
 * their sender stopped waiting are left out: they would only keep a record counted longer. A decision
 * and the compare-and-swap it leads to are one step: a stale view only makes the write fail, and a
 * write made later than its decision is as if decided later. Checks and reads come at any time (a poll,
 * or a watch event late or never), also while the own record's last write is old: the rule "renew
 * before a check" only leaves some of these runs out. For a shared holder the list of step 2b decides
 * nothing, and the model leaves it out. Every client agrees on the mode and on LIMIT.
 *
 * Time, as in lease-lock.pml: every process has its own monotonic clock, a tick advances one clock by
 * one unit, no two clocks differ by more than SKEW (SKEW 0: one tick advances all of them), so the
 * protocol is safe while 2 * SKEW <= MARGIN + GRACE; ages saturate where larger values decide nothing,
 * and a process that is done leaves the skew bound. A writer's deadline is the send of its last
 * successful write of L + DURATION - MARGIN. A reader's is the send of its record's last confirmed write
 * + DURATION - MARGIN: for a holder the last one before its passing check, moved by renewals answered
 * before the deadline (one answered after it ends the hold).
 *
 * Three rules beside the announce-then-check order, the drain and the back-off, each needed (the
 * mutation that drops it has a counterexample; docs/guarantees.md states them):
 *   M1  a writer creates L with the marker. Without it: a reader holds; the controller deletes the free
 *       L; a writer creates L (unmarked), starts draining, and stops before its drain ends (gives up, or
 *       its deadline passes): L is now free, or held by nobody valid, and unmarked; the next writer
 *       takes it by an update, skips the drain, and is valid beside the reader (S2).
 *   M2  a waiter whose record's deadline passes before a renewal is answered gives the record up: it
 *       deletes it and announces again, as a holder's renewal after its deadline does not revive the
 *       hold. Without it: waiter A pauses past its deadline; waiter B, behind A, sees A's record
 *       unchanged for duration + grace, does not count it and holds; A renews (nobody touched the
 *       record, so the write succeeds), keeps its position, counts nobody ahead and holds too (S1).
 *   M3  only a writer that drained may drop the marker (so that later exclusive acquires of a plain
 *       lock need not list): one that gave up while draining would leave the same unmarked L as M1's.
 *
 * Properties (assertions, checked where they could first become false: when a holder becomes valid
 * and when a renewal moves its deadline):
 *   S1  (semaphores) at most LIMIT valid non-exclusive holders at any instant;
 *   S2  a valid exclusive holder is the only valid holder of any kind;
 *   S3  fencing. Tokens: an exclusive holder's is the revision of its acquiring write; a
 *       non-exclusive holder's is the larger of its record's last confirmed write before its passing
 *       check and L's revision as that check saw it. (a) An exclusive holder, when it becomes valid,
 *       carries a token greater than that of every holder, exclusive or not, that became valid before
 *       it; (b) a non-exclusive holder, when it becomes valid, carries a token greater than that of
 *       every exclusive holder that became valid before it. With S2 this is "no lost update" at a
 *       resource that refuses tokens below the highest it has accepted: a holder writes only while
 *       valid, so a write that reaches the resource from a holder valid before an exclusive holder E
 *       carries a token below E's; E's writes are never refused (while E is valid nobody else is, and
 *       nobody valid before it holds a greater token), and once one of them is accepted no write of a
 *       holder valid before E is accepted, however late it lands; likewise no write of E is accepted
 *       once a non-exclusive holder valid after E has written. Tokens of non-exclusive holders are not
 *       ordered among themselves (see TOKEN_ORDER);
 *   S4  (UNTIMED builds) no deadlock: whenever no process can take a step, every acquisition is done.
 *       Here nobody pauses past a deadline or gives up, every record and lease is renewed in time (so
 *       none is judged expired), and a waiting process reads again only after something it waits on
 *       changed (a watch event).
 *
 * Mutations (-D switches), each expected to produce a counterexample:
 *   MUTATION_CHECK_FIRST          a reader reads L before it creates its record (check, then announce)
 *   MUTATION_NO_DRAIN_ON_CREATE   a writer whose write was a create does not drain
 *   MUTATION_DEADLINE_FROM_CHECK  a holder's deadline counted from its passing check (for a semaphore
 *                                 holder, the list) instead of from its record's last write
 *   MUTATION_COUNT_HOLDERS        (semaphores) the count skips records ahead whose owner does not hold
 *                                 yet (as if a record said so)
 *   MUTATION_NO_BACKOFF           (UNTIMED builds) a reader that finds L held keeps its record and waits
 *   MUTATION_CREATE_UNMARKED      without M1: a writer creates L without the marker
 *   MUTATION_WAITER_REVIVES       without M2: a waiter whose record's deadline passed renews it and
 *                                 keeps its position
 *   MUTATION_DROP_UNDRAINED       without M3: a writer that gives up while draining may drop the marker
 *   MUTATION_TOKEN_RECORD_ONLY    a non-exclusive holder's token is its record's last write alone: once
 *                                 a drained writer dropped the marker, a later writer takes L without
 *                                 draining while a reader that announced before it has not checked yet;
 *                                 the reader then holds with a token below that writer's (S3 (b))
 *   MUTATION_SKEW                 clocks drift twice as far as MARGIN + GRACE tolerates
 *
 * MUTATION_DEADLINE_FROM_CHECK breaks S1, never S2: a writer starts watching a record only after its
 * acquiring write, which comes after the holder's read of L (else the holder would have backed off),
 * so a deadline counted from that read is still safe against writers; a semaphore holder's peers may
 * have watched its record since long before its check. MUTATION_NO_BACKOFF is checked for S4 only: with
 * clocks, records and leases that stop being renewed expire and the two sides stop waiting on each
 * other, so a bounded run with clocks cannot show the deadlock.
 *
 * TOKEN_ORDER (a -D switch; LIMIT 1, no writers) asserts what the protocol does not give: that each
 * holder's token is greater than that of every holder that became valid before it, as for a lock.
 * Counterexample: waiter B renews its record and then passes its check (its token: the renewal's
 * revision); B releases; waiter A, whose record was created before B's renewal and not written since,
 * holds with a smaller token (L unchanged in between).
 *
 * Bounds: at most 3 writers and 3 readers, 4 clients in all; the defaults below, and each run's in
 * test/protocol-model.test.ts.
 */

/* ---- bounds and durations, in clock units; override with -D ---- */
#ifndef NWR
#define NWR 1           /* exclusive clients (writers): clients 0 .. NWR - 1 */
#endif
#ifndef NRD
#define NRD 1           /* non-exclusive clients (readers): clients NWR .. NWR + NRD - 1 */
#endif
#ifndef LIMIT
#define LIMIT 0         /* 0: shared locks; N > 0: a semaphore of N (every client agrees on N) */
#endif
#ifndef NACQ
#define NACQ 1          /* acquisitions per client */
#endif
#ifndef NANN
#define NANN 2          /* records per reader acquisition: the first, and one per back-off or restart */
#endif
#ifndef NREN
#define NREN 1          /* renewals of its records per reader acquisition */
#endif
#ifndef NRENW
#define NRENW 1         /* renewals of L per writer acquisition */
#endif
#ifndef GC
#define GC 1            /* the controller deletes free leases */
#endif
#ifndef GC_FREE
#define GC_FREE 0       /* ... and frees leases and deletes records it has seen unchanged too long */
#endif
#ifndef DURATION
#define DURATION 3      /* leaseDurationSeconds of L and of every record */
#endif
#ifndef MARGIN
#define MARGIN 1        /* safetyMargin */
#endif
#ifndef GRACE
#define GRACE 1         /* expiryGrace of clients */
#endif
#ifndef CGRACE
#define CGRACE 1        /* the controller's grace */
#endif
#ifdef MUTATION_SKEW
#define SKEW 2
#endif
#ifndef SKEW
#define SKEW 1          /* largest difference between two clocks */
#endif

#define NC (NWR + NRD)
#define VALIDFOR (DURATION - MARGIN)
#define WAIT     (DURATION + GRACE)
#define CWAIT    (DURATION + CGRACE)
#if GC_FREE
#define CI NC           /* the controller's index among the observers and clocks */
#define NP (NC + 1)
#else
#define NP NC
#endif

#ifdef MUTATION_CREATE_UNMARKED
#define CREATE_MARK false
#else
#define CREATE_MARK true
#endif
#ifdef MUTATION_NO_DRAIN_ON_CREATE
#define DRAIN_ON_CREATE false
#else
#define DRAIN_ON_CREATE true
#endif

/* client states */
#define IDLE    0
#define DONE    1
#define W_ACQ   2       /* writer: reads L, takes it when absent, free or judged expired */
#define W_LIST  3       /* writer: took L, lists the records next */
#define W_DRAIN 4       /* writer: waits until every listed record is gone or judged expired */
#define W_HOLD  5
#define R_PRE   6       /* reader, MUTATION_CHECK_FIRST only: checks L before it announces */
#define R_ANN   7       /* reader: creates its record next */
#define R_CHK   8       /* reader: checks L next (2a), now or after a change */
#define R_LIST  9       /* reader (semaphores): lists and counts next (2b, 2e) */
#define R_OFF   10      /* reader: backed off, waits until L is free */
#define R_HOLD  11

/* a record renewal in flight */
#define RQ_NONE 0
#define RQ_SENT 1

/* outcomes of a check of L */
#define C_AGAIN 1
#define C_PASS  2
#define C_HELD  3

/* ---- the store ---- */
byte rev;               /* the last revision handed out */
bool l_ex;
byte l_holder;          /* 0: free; else a writer's acquisition */
bool l_mark;            /* the mode marker */
bool h_ex[NRD];         /* reader q's record */

/*
 * Every variable that holds a revision lives in R, so that renumber (below) can rename them all in one
 * loop: L's revision, the S3 ghosts, the controller's view of L, each record's position and revision,
 * per client its last confirmed write, its token, its record's position, its view of L and L's revision
 * at its passing check, and per observer its views of the records (position and revision).
 */
#define NOBS (NC + GC_FREE)
#define NREV (4 + 2 * NRD + 5 * NC + 2 * NOBS * NRD)
byte R[NREV];
#define L_RV     R[0]       /* L's resourceVersion */
#define MAXALL   R[1]       /* S3: the greatest token of any holder that became valid so far */
#define G_RV     R[2]       /* the controller's view of L */
#define MAXEX    R[3]       /* S3: the greatest token of an exclusive holder that became valid so far */
#define H_POS(q) R[4 + (q)]                 /* record q's position: the revision of its create */
#define H_RV(q)  R[4 + NRD + (q)]
#define KV(c)    R[4 + 2 * NRD + (c)]       /* its last confirmed write (of L, or of its record) */
#define TOK(c)   R[4 + 2 * NRD + NC + (c)]
#define POS(c)   R[4 + 2 * NRD + 2 * NC + (c)]   /* a reader's current record's position */
#define O_RV(c)  R[4 + 2 * NRD + 3 * NC + (c)]   /* its view of L: the revision it first saw */
#define LR(c)    R[4 + 2 * NRD + 4 * NC + (c)]   /* a reader: L's revision as its last passing check saw it */
#define VP(v)    R[4 + 2 * NRD + 5 * NC + (v)]   /* views of the records, V(observer, record) */
#define VR(v)    R[4 + 2 * NRD + 5 * NC + NOBS * NRD + (v)]

/* ---- clients ---- */
byte st[NC];
byte cur[NC];           /* writers: the current acquisition (holder of L) */
byte rem[NC];           /* ticks of its clock until its deadline */
byte nren[NC];
byte nann[NC];
byte rq[NC];            /* readers: the renewal in flight */
byte rq_age[NC];
bool pre[NC];           /* MUTATION_CHECK_FIRST: L was checked before the record was created */
/* since when it has seen L unchanged (its revision in O_RV; with clocks, only while L is held) */
byte o_age[NC];
/* ages of the views of the records, per observer (clients, then the controller) */
byte va[NOBS * NRD];
#define V(i, q) ((i) * NRD + (q))
#ifdef UNTIMED
bool wake[NC];          /* the next read is a first one, not a wait for a change */
#endif

#if GC_FREE
byte g_age;             /* the age of the controller's view of L */
#endif

byte lead[NP];          /* clock p - the slowest clock */
byte q;
byte n;
bool allup;

/*
 * Only the order and equality of revisions decide anything, so after every step the revisions in use
 * are renamed 1, 2, ... in order and `rev` becomes the greatest of them: runs that differ only in how
 * many revisions went by are one state, and the state space is finite without a bound on revisions.
 */
byte x;
byte y;
bool used;
byte z;
inline renumber() {
  d_step {
    y = 0; x = 1;
    do
    :: x > rev -> break
    :: else ->
       used = false;
       for (z : 0 .. NREV - 1) {
         if
         :: R[z] == x -> used = true; break
         :: else -> skip
         fi
       }
       if
       :: used -> y++;
          if
          :: y != x ->
             for (z : 0 .. NREV - 1) {
               if
               :: R[z] == x -> R[z] = y
               :: else -> skip
               fi
             }
          :: else -> skip
          fi
       :: else -> skip
       fi;
       x++
    od;
    rev = y; x = 0; y = 0; z = 0; used = false;
    assert(rev < 100)    /* far more than the variables that can hold one */
  }
}

#define RD(q) (NWR + (q))
#define WVALID(c) (st[c] == W_HOLD && rem[c] > 0)
#define RVALID(c) (st[c] == R_HOLD && rem[c] > 0)
#define L_NOW (l_ex -> L_RV : 0)

/* ---- S1, S2 ---- */
inline s_writer(i) {
  for (q : 0 .. NC - 1) {
    assert(q == i || !(WVALID(q) || RVALID(q)))    /* S2 */
  }
  q = 0
}

inline s_reader(i) {
  n = 0;
  for (q : 0 .. NC - 1) {
    assert(!WVALID(q));                             /* S2 */
    if
    :: RVALID(q) -> n++
    :: else -> skip
    fi
  }
#if LIMIT > 0
  assert(n <= LIMIT);                               /* S1 */
#endif
  q = 0; n = 0
}

/* ---- observing ---- */
inline look_l(i) {
#ifdef UNTIMED
  O_RV(i) = L_NOW
#else
  if
  :: l_ex && l_holder != 0 && O_RV(i) == L_RV -> skip    /* unchanged: keeps its first-seen time */
  :: l_ex && l_holder != 0 && O_RV(i) != L_RV -> O_RV(i) = L_RV; o_age[i] = 0
  :: else -> O_RV(i) = 0; o_age[i] = 0
  fi
#endif
}

/* observer i reads record q (present) */
inline observe(i, q) {
  if
  :: VR(V(i, q)) == H_RV(q) -> skip                      /* unchanged (revisions are unique) */
  :: else -> VP(V(i, q)) = H_POS(q); VR(V(i, q)) = H_RV(q); va[V(i, q)] = 0
  fi
}

inline unview(i, q) {
  VP(V(i, q)) = 0; VR(V(i, q)) = 0; va[V(i, q)] = 0
}

inline forget_views(i) {
  for (q : 0 .. NRD - 1) { unview(i, q) }
  q = 0
}

#define COUNTS(i, q) (VP(V(i, q)) != 0 && va[V(i, q)] < WAIT)

/* ---- writers ---- */
inline w_end(i) {
  st[i] = IDLE; cur[i] = 0; rem[i] = 0; TOK(i) = 0; KV(i) = 0; nren[i] = 0; forget_views(i)
}

/*
 * A writer that drained may drop the marker with any later write of L (a renewal or its release): every
 * reader that read L since the writer's acquiring write found it held and backed off, and the drain
 * saw every record created before that write. Without the drop, every exclusive acquire of a name whose
 * lease a writer created would list the records; the model lets each such write drop it or not.
 */
#ifdef MUTATION_DROP_UNDRAINED
#define MAY_DROP(i) (st[i] == W_HOLD || st[i] == W_DRAIN)
#else
#define MAY_DROP(i) (st[i] == W_HOLD)
#endif
inline may_drop(i) {
  if
  :: MAY_DROP(i) && l_mark -> l_mark = false
  :: true -> skip
  fi
}

/* frees L if it is still as this acquisition last wrote it (release, give up, past the deadline) */
inline w_free(i) {
  if
  :: l_ex && L_RV == KV(i) -> rev++; L_RV = rev; l_holder = 0; may_drop(i)
  :: else -> skip
  fi;
  w_end(i)
}

inline w_valid(i) {
  if
  :: rem[i] > 0 ->
     st[i] = W_HOLD; forget_views(i); s_writer(i);
     assert(TOK(i) > MAXALL);                       /* S3 */
     MAXALL = TOK(i); MAXEX = TOK(i)
  :: else -> w_free(i)                              /* past its deadline on arrival */
  fi
}

#define DRAINED(i) ((VP(V(i, 0)) == 0 || va[V(i, 0)] >= WAIT) && \
                    (NRD < 2 || VP(V(i, 1)) == 0 || va[V(i, 1)] >= WAIT) && \
                    (NRD < 3 || VP(V(i, 2)) == 0 || va[V(i, 2)] >= WAIT))
#define GONE(i, q) (VP(V(i, q)) != 0 && !(h_ex[q] && H_POS(q) == VP(V(i, q))))
#define ANY_GONE(i) (GONE(i, 0) || (NRD > 1 && GONE(i, 1)) || (NRD > 2 && GONE(i, 2)))

#ifdef UNTIMED
/* something it waits on changed since its last read (a watch event) */
#define SEEN_Q(i, q, j) ((q) != (j) && h_ex[q] && H_POS(q) < POS(i))
#define CHG_Q(i, q, j) ((SEEN_Q(i, q, j) && VR(V(i, q)) != H_RV(q)) || (!SEEN_Q(i, q, j) && VR(V(i, q)) != 0))
#define L_CHANGED(i) (wake[i] || O_RV(i) != L_NOW)
#define CHANGED(i, j) (L_CHANGED(i) || (LIMIT > 0 && (CHG_Q(i, 0, j) || \
                       (NRD > 1 && CHG_Q(i, 1, j)) || (NRD > 2 && CHG_Q(i, 2, j)))))
#define DRAIN_NEWS(i) ANY_GONE(i)
#else
#define DRAIN_NEWS(i) true
#define L_CHANGED(i) true
#define CHANGED(i, j) true
#endif

proctype writer(byte i) {
  byte k = 0;   /* acquisitions begun */
  bool drain;
end:
  do
  :: atomic { st[i] == IDLE && k < NACQ ->
              k++; cur[i] = i * NACQ + k; st[i] = W_ACQ;
#ifdef UNTIMED
              wake[i] = true
#else
              skip
#endif
            }
  :: atomic { st[i] == IDLE && k == NACQ -> st[i] = DONE; O_RV(i) = 0; o_age[i] = 0; lead[i] = 0; renumber() }

  /* take L: create when absent; compare-and-swap when free or judged expired */
  :: atomic { st[i] == W_ACQ && L_CHANGED(i) ->
#ifdef UNTIMED
              wake[i] = false;
#endif
              look_l(i);
              if
              :: !l_ex ->
                 rev++; l_ex = true; l_holder = cur[i]; L_RV = rev; l_mark = CREATE_MARK; drain = DRAIN_ON_CREATE
              :: l_ex && (l_holder == 0 || o_age[i] >= WAIT) ->
                 drain = l_mark; rev++; l_holder = cur[i]; L_RV = rev    /* the marker stays */
              :: else -> skip                                          /* held: read again later */
              fi;
              if
              :: l_ex && l_holder == cur[i] ->
                 KV(i) = L_RV; TOK(i) = L_RV; rem[i] = VALIDFOR; O_RV(i) = 0; o_age[i] = 0;
                 if
                 :: drain -> st[i] = W_LIST
                 :: else -> w_valid(i)
                 fi
              :: else -> skip
              fi;
              drain = false; renumber() }
#ifndef UNTIMED
  :: atomic { st[i] == W_ACQ -> w_end(i); renumber() }                               /* gives up */
#endif

  /* drain: a consistent list after the write; records created later are not waited for */
  :: atomic { st[i] == W_LIST ->
              for (q : 0 .. NRD - 1) {
                if
                :: h_ex[q] -> VP(V(i, q)) = H_POS(q); VR(V(i, q)) = H_RV(q); va[V(i, q)] = 0
                :: else -> unview(i, q)
                fi
              }
              q = 0;
              if
              :: DRAINED(i) -> w_valid(i)
              :: else -> st[i] = W_DRAIN
              fi; renumber() }
  :: atomic { st[i] == W_DRAIN && DRAIN_NEWS(i) ->
              for (q : 0 .. NRD - 1) {
                if
                :: GONE(i, q) -> unview(i, q)
                :: VP(V(i, q)) != 0 && !GONE(i, q) -> observe(i, q)
                :: else -> skip
                fi
              }
              q = 0;
              if
              :: DRAINED(i) -> w_valid(i)    /* judged on this read */
              :: else -> skip
              fi; renumber() }

  /* renew L (while draining too) */
#ifndef UNTIMED
  :: atomic { (st[i] == W_DRAIN || st[i] == W_HOLD) && rem[i] > 0 && nren[i] < NRENW ->
              nren[i]++;
              if
              :: l_ex && L_RV == KV(i) ->
                 rev++; L_RV = rev; KV(i) = rev; rem[i] = VALIDFOR; may_drop(i);
                 if
                 :: st[i] == W_HOLD -> s_writer(i)
                 :: else -> skip
                 fi
              :: else -> rem[i] = 0    /* freed or taken: lost */
              fi; renumber() }
  /* give up while draining, or release; past the deadline too */
  :: atomic { st[i] == W_DRAIN || st[i] == W_HOLD -> w_free(i); renumber() }
#else
  :: atomic { st[i] == W_HOLD -> w_free(i); renumber() }
#endif
  od
}

/* ---- readers ---- */
inline r_idle(i) {
  st[i] = IDLE; rem[i] = 0; TOK(i) = 0; KV(i) = 0; POS(i) = 0; LR(i) = 0; nren[i] = 0; nann[i] = 0;
  pre[i] = false;
  O_RV(i) = 0; o_age[i] = 0; forget_views(i)
}

/* leaves its record: deletes it if unchanged since its last confirmed write; drops a renewal in flight */
inline r_leave(i, j) {
  if
  :: h_ex[j] && H_RV(j) == KV(i) -> h_ex[j] = false; H_POS(j) = 0; H_RV(j) = 0
  :: else -> skip
  fi;
  rem[i] = 0; KV(i) = 0; POS(i) = 0; LR(i) = 0; rq[i] = RQ_NONE; rq_age[i] = 0
}

inline r_took(i, j) {
#ifdef MUTATION_DEADLINE_FROM_CHECK
  rem[i] = VALIDFOR;
#endif
  if
  :: rem[i] > 0 ->
     st[i] = R_HOLD; O_RV(i) = 0; o_age[i] = 0; forget_views(i); s_reader(i);
#if NWR > 0 || defined(TOKEN_ORDER)
     /* its token: the larger of its record's last confirmed write and L as its passing check saw it */
     TOK(i) = KV(i);
#ifndef MUTATION_TOKEN_RECORD_ONLY
     if
     :: LR(i) > TOK(i) -> TOK(i) = LR(i)
     :: else -> skip
     fi;
#endif
#if NWR > 0
     assert(TOK(i) > MAXEX);                        /* S3 */
#else
     assert(TOK(i) > MAXALL);                       /* see TOKEN_ORDER in the header */
#endif
     if
     :: TOK(i) > MAXALL -> MAXALL = TOK(i)
     :: else -> skip
     fi;
#endif
     LR(i) = 0
  :: else -> r_leave(i, j); st[i] = R_ANN           /* past its deadline on arrival: starts over */
  fi
}

/* 2a, 2c, 2d: a consistent get of L and what follows from it; sets c */
inline check_l(i, c) {
  look_l(i);
  if
  :: !l_ex -> rev++; l_ex = true; l_holder = 0; L_RV = rev; l_mark = true; c = C_PASS
  :: l_ex && l_holder == 0 && !l_mark -> rev++; L_RV = rev; l_mark = true; c = C_PASS
  :: l_ex && l_holder == 0 && l_mark -> c = C_PASS
#ifdef UNTIMED
  :: l_ex && l_holder != 0 -> c = C_HELD
#else
  :: l_ex && l_holder != 0 && o_age[i] >= WAIT ->
     rev++; L_RV = rev; l_holder = 0; l_mark = true; O_RV(i) = 0; o_age[i] = 0; c = C_AGAIN
  :: l_ex && l_holder != 0 && o_age[i] < WAIT -> c = C_HELD
#endif
  fi;
#if NWR > 0 || defined(TOKEN_ORDER)
  if
  :: c == C_PASS -> LR(i) = L_RV
  :: else -> skip
  fi
#else
  skip
#endif
}

/* the records ahead of its own, as a consistent list shows them */
inline list_ahead(i, j) {
  for (q : 0 .. NRD - 1) {
    if
    :: q != j && h_ex[q] && H_POS(q) < POS(i) -> observe(i, q)
    :: else -> unview(i, q)
    fi
  }
  q = 0
}

#ifdef MUTATION_COUNT_HOLDERS
#define AHEAD(i, q) (COUNTS(i, q) && st[RD(q)] == R_HOLD && POS(RD(q)) == VP(V(i, q)))
#else
#define AHEAD(i, q) COUNTS(i, q)
#endif

#if LIMIT > 0
#define AFTER_L R_LIST
#else
#define AFTER_L R_HOLD  /* shared: holds once L is checked */
#endif

#ifdef MUTATION_WAITER_REVIVES
#define MAY_RENEW(i) (st[i] == R_CHK || rem[i] > 0)
#else
#define MAY_RENEW(i) (rem[i] > 0)
#endif

proctype reader(byte i) {
  byte k = 0;   /* acquisitions begun */
  byte j = i - NWR;
  byte c;
end:
  do
  :: atomic { st[i] == IDLE && k < NACQ ->
              k++;
#ifdef UNTIMED
              wake[i] = true;
#endif
#ifdef MUTATION_CHECK_FIRST
              st[i] = R_PRE
#else
              st[i] = R_ANN
#endif
            }
  :: atomic { st[i] == IDLE && k == NACQ -> r_idle(i); st[i] = DONE; lead[i] = 0; renumber() }

#ifdef MUTATION_CHECK_FIRST
  /* checks L before it has a record */
  :: atomic { st[i] == R_PRE && L_CHANGED(i) ->
              check_l(i, c);
              if
              :: c == C_PASS -> pre[i] = true; st[i] = R_ANN
              :: else -> skip
              fi;
#ifdef UNTIMED
              wake[i] = (c == C_AGAIN);
#endif
              c = 0; renumber() }
#endif

  /* 1: announce */
  :: atomic { st[i] == R_ANN && nann[i] < NANN ->
              nann[i]++; rev++; h_ex[j] = true; H_POS(j) = rev; H_RV(j) = rev;
              POS(i) = rev; KV(i) = rev; rem[i] = VALIDFOR;
#ifdef UNTIMED
              wake[i] = true;
#endif
              if
              :: pre[i] -> pre[i] = false; st[i] = AFTER_L;
                 if
                 :: st[i] == R_HOLD -> r_took(i, j)
                 :: else -> skip
                 fi
              :: else -> st[i] = R_CHK
              fi; renumber() }
  :: atomic { st[i] == R_ANN && nann[i] == NANN -> r_idle(i); renumber() }    /* gives up */

  /* 2a, 2c, 2d */
  :: atomic { st[i] == R_CHK && rq[i] == RQ_NONE && rem[i] > 0 && CHANGED(i, j) ->
              check_l(i, c);
#ifdef UNTIMED
              wake[i] = (c == C_AGAIN);
#endif
              if
              :: c == C_PASS -> st[i] = AFTER_L;
                 if
                 :: st[i] == R_HOLD -> r_took(i, j)
                 :: else -> skip
                 fi
              :: c == C_HELD ->
#ifdef MUTATION_NO_BACKOFF
                 skip                                 /* keeps its record, waits for L to come free */
#else
                 r_leave(i, j); st[i] = R_OFF         /* backs off */
#endif
              :: else -> skip
              fi;
              c = 0; renumber() }

  /* 2b, 2e (semaphores): list and count the records ahead that still count */
  :: atomic { st[i] == R_LIST ->
              list_ahead(i, j);
              n = 0;
              for (q : 0 .. NRD - 1) {
                if
                :: AHEAD(i, q) -> n++
                :: else -> skip
                fi
              }
              q = 0;
              if
              :: n < LIMIT -> n = 0; r_took(i, j)
              :: else -> n = 0; LR(i) = 0; st[i] = R_CHK    /* waits for a change, then checks again */
              fi; renumber() }

  /* backed off: waits until L is seen free (or judged expired), then announces again */
  :: atomic { st[i] == R_OFF && L_CHANGED(i) ->
              look_l(i);
#ifdef UNTIMED
              wake[i] = false;
#endif
              if
              :: !l_ex || l_holder == 0 || o_age[i] >= WAIT -> st[i] = R_ANN
              :: else -> skip
              fi; renumber() }

#ifndef UNTIMED
  /* M2: a waiter whose record's deadline passed starts over with a new record */
#ifndef MUTATION_WAITER_REVIVES
  :: atomic { st[i] == R_CHK && rem[i] == 0 && rq[i] == RQ_NONE -> r_leave(i, j); st[i] = R_ANN; renumber() }
#endif

  /*
   * Renewing its record: sent, then applied at a later step, where the answer arrives or is lost. An
   * answer that comes later still only makes its sender know later (the deadline counts from the send
   * either way); a write that never applies and is never answered is the same as no renewal.
   */
  :: atomic { (st[i] == R_CHK || st[i] == R_HOLD) && rq[i] == RQ_NONE && nren[i] < NREN && MAY_RENEW(i) ->
              nren[i]++; rq[i] = RQ_SENT; rq_age[i] = 0 }
  :: atomic { rq[i] == RQ_SENT && h_ex[j] && H_RV(j) == KV(i) ->
              rev++; H_RV(j) = rev; KV(i) = rev;
              if
              :: rem[i] > 0 ->
                 rem[i] = VALIDFOR - rq_age[i];
                 if
                 :: st[i] == R_HOLD && rem[i] > 0 -> s_reader(i)
                 :: else -> skip
                 fi
#ifdef MUTATION_WAITER_REVIVES
              :: rem[i] == 0 && st[i] == R_CHK -> rem[i] = VALIDFOR - rq_age[i]    /* keeps its place */
#endif
              :: else ->
                 if
                 :: st[i] == R_CHK -> r_leave(i, j); st[i] = R_ANN    /* M2: too late, starts over */
                 :: else -> skip                                      /* a hold that ended stays ended */
                 fi
              fi;
              rq[i] = RQ_NONE; rq_age[i] = 0; renumber() }
  /* applied, the answer lost: a holder counts its hold lost, a waiter goes on as last confirmed */
  :: atomic { rq[i] == RQ_SENT && h_ex[j] && H_RV(j) == KV(i) ->
              rev++; H_RV(j) = rev; rq[i] = RQ_NONE; rq_age[i] = 0;
              if
              :: st[i] == R_HOLD -> rem[i] = 0
              :: else -> skip
              fi; renumber() }
  /* the record is gone or changed: a holder has lost it, a waiter starts over */
  :: atomic { rq[i] == RQ_SENT && !(h_ex[j] && H_RV(j) == KV(i)) ->
              rq[i] = RQ_NONE; rq_age[i] = 0;
              if
              :: st[i] == R_HOLD -> rem[i] = 0
              :: else -> r_leave(i, j); st[i] = R_ANN
              fi; renumber() }
#endif

  /* 4: release (also once its deadline passed) */
  :: atomic { st[i] == R_HOLD -> r_leave(i, j); r_idle(i); renumber() }
  od
}

/* ---- the controller ---- */
#if GC
active proctype controller() {
end:
  do
  :: atomic { l_ex && l_holder == 0 -> l_ex = false; L_RV = 0; l_mark = false; renumber() }   /* under its rv */
#if GC_FREE
  :: atomic {
       if
       :: l_ex && l_holder != 0 && G_RV == L_RV -> skip
       :: l_ex && l_holder != 0 && G_RV != L_RV -> G_RV = L_RV; g_age = 0
       :: else -> G_RV = 0; g_age = 0
       fi;
       for (q : 0 .. NRD - 1) {
         if
         :: h_ex[q] -> observe(CI, q)
         :: else -> unview(CI, q)
         fi
       }
       q = 0; renumber() }
  :: atomic { G_RV != 0 && g_age >= CWAIT && l_ex && L_RV == G_RV ->
              rev++; L_RV = rev; l_holder = 0; G_RV = 0; g_age = 0; renumber() }               /* frees L */
  :: atomic { VR(V(CI, 0)) != 0 && va[V(CI, 0)] >= CWAIT && h_ex[0] && H_RV(0) == VR(V(CI, 0)) ->
              h_ex[0] = false; H_POS(0) = 0; H_RV(0) = 0; unview(CI, 0); renumber() }            /* deletes a record */
#if NRD > 1
  :: atomic { VR(V(CI, 1)) != 0 && va[V(CI, 1)] >= CWAIT && h_ex[1] && H_RV(1) == VR(V(CI, 1)) ->
              h_ex[1] = false; H_POS(1) = 0; H_RV(1) = 0; unview(CI, 1); renumber() }
#endif
#if NRD > 2
  :: atomic { VR(V(CI, 2)) != 0 && va[V(CI, 2)] >= CWAIT && h_ex[2] && H_RV(2) == VR(V(CI, 2)) ->
              h_ex[2] = false; H_POS(2) = 0; H_RV(2) = 0; unview(CI, 2); renumber() }
#endif
#endif
  od
}
#endif

#ifdef UNTIMED
/* S4: everything blocked means every acquisition is done */
#if NC > 3
#define ALL_DONE (st[0] == DONE && st[1] == DONE && st[2] == DONE && st[3] == DONE)
#elif NC > 2
#define ALL_DONE (st[0] == DONE && st[1] == DONE && st[2] == DONE)
#else
#define ALL_DONE (st[0] == DONE && st[1] == DONE)
#endif
active proctype deadlock() {
end:
  timeout -> assert(ALL_DONE)
}
#else

/* ---- time ---- */
#define TICKS(p) ((p) >= NC || st[p] != DONE)

inline age(p) {
  if
  :: p < NC ->
     if
     :: O_RV(p) != 0 && o_age[p] < WAIT -> o_age[p]++
     :: else -> skip
     fi;
     if
     :: rem[p] > 0 -> rem[p]--
     :: else -> skip
     fi;
     if
     :: rq[p] == RQ_SENT && rq_age[p] < VALIDFOR -> rq_age[p]++
     :: else -> skip
     fi
  :: else ->
#if GC_FREE
     if
     :: G_RV != 0 && g_age < CWAIT -> g_age++
     :: else -> skip
     fi
#else
     skip
#endif
  fi;
  for (q : 0 .. NRD - 1) {
    if
    :: VP(V(p, q)) != 0 && va[V(p, q)] < (p < NC -> WAIT : CWAIT) -> va[V(p, q)]++
    :: else -> skip
    fi
  }
  q = 0
}

/* keeps the slowest clock that still counts at 0 */
inline normalize() {
  allup = true;
  for (q : 0 .. NP - 1) {
    if
    :: lead[q] == 0 && TICKS(q) -> allup = false
    :: else -> skip
    fi
  }
  if
  :: allup ->
     for (q : 0 .. NP - 1) {
       if
       :: lead[q] > 0 -> lead[q]--
       :: else -> skip
       fi
     }
  :: else -> skip
  fi;
  q = 0; allup = false
}

#if SKEW == 0
/* clocks in step: one tick advances every clock that still counts */
active proctype clock() {
end:
  do
  :: d_step {
       TICKS(0) || (NP > 1 && TICKS(1)) || (NP > 2 && TICKS(2)) || (NP > 3 && TICKS(3)) ||
       (NP > 4 && TICKS(4)) ->
       for (n : 0 .. NP - 1) {
         if
         :: TICKS(n) -> age(n)
         :: else -> skip
         fi
       }
       n = 0 }
  od
}
#else
active proctype clock() {
end:
  do
  :: d_step { lead[0] < SKEW && TICKS(0) -> lead[0]++; age(0); normalize() }
#if NP > 1
  :: d_step { lead[1] < SKEW && TICKS(1) -> lead[1]++; age(1); normalize() }
#endif
#if NP > 2
  :: d_step { lead[2] < SKEW && TICKS(2) -> lead[2]++; age(2); normalize() }
#endif
#if NP > 3
  :: d_step { lead[3] < SKEW && TICKS(3) -> lead[3]++; age(3); normalize() }
#endif
#if NP > 4
  :: d_step { lead[4] < SKEW && TICKS(4) -> lead[4]++; age(4); normalize() }
#endif
  od
}
#endif
#endif

init {
  atomic {
#if NWR > 0
    run writer(0);
#endif
#if NWR > 1
    run writer(1);
#endif
#if NWR > 2
    run writer(2);
#endif
#if NRD > 0
    run reader(NWR);
#endif
#if NRD > 1
    run reader(NWR + 1);
#endif
#if NRD > 2
    run reader(NWR + 2);
#endif
  }
}
