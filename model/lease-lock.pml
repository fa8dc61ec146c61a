/*
 * The kube-locks lock protocol over one Lease, as the safety argument in DESIGN.md states it: a store
 * with compare-and-swap on (uid, resourceVersion), clients that acquire, renew and release, a
 * controller that frees expired leases and deletes free ones, and an operator running
 * `locks release`. Checked exhaustively with SPIN by test/protocol-model.test.ts; the bounds, what is
 * abstracted away and how to run it are in docs/safety.md ("What the protocol model covers").
 *
 * Model step                          TypeScript that does it
 * ----------------------------------  ------------------------------------------------------------------
 * client: read (a poll or a watch     acquireStep (sdk/acquire-step.ts) reading `unknown` views; the
 *   event, late or never)               wait loop in LockClient.#acquire (sdk/locks.ts): news, polls
 * observation age, kept while the     observe / expiresAt (sdk/expiry.ts), LockClient.#observations
 *   (uid, rv) is unchanged
 * client: create when absent          acquireStep -> store.create
 * client: take over free or expired   acquireStep -> store.update under {uid, resourceVersion}
 * client: read-back of a pending      acquireStep: holderIdentity === identity && pendingSentAt
 *   write                               -> acquired with sentAt = pendingSentAt
 * client: unknown outcome -> pending  write() in acquire-step.ts: pendingSentAt ?? sentAt (earliest)
 * client: give up, read, free if ours LockClient.#acquire catch -> LockClient.#abandon
 * client: past deadline on arrival    LockClient.#acquire: lock.signal.aborted -> release (and retry
 *                                       with a new identity)
 * holder: deadline = send + E - M     HeldLock constructor / HeldLock.#renewOnce (sdk/held-lock.ts);
 *                                       M = defaultSafetyMargin (sdk/options.ts)
 * holder: renew (CAS)                 HeldLock.#renewOnce: store.update of the held record
 * holder: deadline timer fires        HeldLock.#scheduleDeadline -> #lose
 * holder: release (CAS to free; on a  HeldLock.#release / #free: freedRecord, then get + free if it
 *   conflict re-read, free if ours)     still names this acquisition
 * controller: free expired lease      reconcile (controller/reconcile.ts) 'free', an update under
 *                                       {uid, resourceVersion}
 * controller: delete after retention  reconcile 'delete' with preconditions {uid, resourceVersion}
 * operator: `locks release`           releaseOnceExpired (cli/release.ts): the same observation rule,
 *                                       then a CAS to free
 * operator: `locks release --force`   releaseCommand with flags.force: CAS to free at once
 * store                               the Kubernetes API facts in DESIGN.md (LeaseStore, sdk/lease-store.ts)
 * net: a write applied late or never  a request whose answer was lost (LockUnavailableError with
 *                                       outcomeUnknown) that the API server applies afterwards
 *
 * Time. Each process has its own monotonic clock; a tick advances one clock by one unit. Clocks run at
 * any rates as long as no two differ by more than SKEW units, so over any interval two clocks advance
 * by amounts that differ by at most 2 * SKEW: the correct model is safe exactly while
 * 2 * SKEW <= MARGIN + GRACE (a holder's clock may lag an observer's by that much over one lease).
 * Times are kept as ages (ticks of the owner's clock since an event, saturated where larger values
 * decide nothing), so the state space is finite without a time horizon. A client that is done decides
 * nothing more: its clock leaves the skew bound.
 *
 * Properties (assertions; P1-P3 are checked where they could first become false):
 *   P1  at most one valid holder at any instant (valid: acquired, not released or lost, own clock
 *       before its deadline);
 *   P2  a lock handed out valid carries a fencing token (the rv of its acquiring write) greater than
 *       every token handed out before it, across delete and re-create; a holder that is valid holds
 *       the greatest token handed out so far;
 *   P3  a write of the controller that applies finds the lease exactly as the controller observed it
 *       (not renewed since), a lease it frees names no valid holder, and a lease it deletes is free;
 *   P4  (LIVENESS builds, LTL with weak fairness) a lock whose holder died is acquired by the waiter.
 *
 * Mutations (-D switches), each expected to produce a counterexample (except MUTATION_NO_UID, below):
 *   MUTATION_NO_MARGIN        no safety margin (M = 0)
 *   MUTATION_RENEWTIME        expiry judged from the writer's renewTime and the reader's wall clock
 *   MUTATION_NO_UID           updates without the uid precondition: an update of a deleted lease
 *                             creates it again
 *   MUTATION_DEADLINE_ANSWER  the deadline counted from the answer instead of the send
 *   MUTATION_PENDING_LATEST   the pending send time of the latest unknown write, not the earliest
 *   MUTATION_READBACK_NOW     a read-back counts its deadline from the read
 *   MUTATION_RV_PER_OBJECT    resourceVersion restarts with each created lease
 *   MUTATION_CONTROLLER_BLIND the controller writes without preconditions
 *   MUTATION_SKEW             clocks drift twice as far as MARGIN + GRACE tolerates
 *   WITH_FORCE                the operator runs `locks release --force`
 *   MUTATION_OBSERVE_RESET    (LIVENESS builds) an unchanged lease's first-seen time restarts with
 *                             every read, so a waiter that keeps reading never sees it expire
 *
 * MUTATION_NO_UID cannot fail here, and a complete search confirms it (1 client with the controller,
 * NACQ 2, NREN 1, RVMAX 6: 2,659,546 states, no error). Without the uid precondition an update still
 * carries the resourceVersion it read, and with one global revision no other lease, not even the same
 * name re-created, ever has that resourceVersion again: a stale update fails as before. What is left is
 * an update that finds the lease deleted and creates it. A lease is deleted only once free, and it
 * becomes free only by its holder's release or after its holder's deadline (expiry, by the waiter's or
 * the controller's rule); so such an update lands after its sender's deadline: an answered renewal then
 * finds its sender lost (rem == 0), a renewal or release whose answer was lost belongs to a sender that
 * counts its lock lost already, and an acquiring write makes a new lease whose token (its fresh
 * resourceVersion) is the greatest yet, while nobody else can be valid (the lease was free when
 * deleted, and a create by someone else since would have made the update fail). The uid precondition
 * guards what the model leaves out: revisions that repeat (an etcd restore, a store with per-object
 * revisions: MUTATION_RV_PER_OBJECT) and clocks outside the skew bound.
 */

/* ---- bounds and durations, in clock units; override with -D ---- */
#ifndef NC
#define NC 2            /* clients */
#endif
#ifndef NACQ
#define NACQ 1          /* acquisitions per client */
#endif
#ifndef NREN
#define NREN 2          /* renewals per acquisition */
#endif
#ifndef CONTROLLER
#define CONTROLLER 1
#endif
#ifdef WITH_FORCE
#define OPERATOR 1
#endif
#ifndef OPERATOR
#define OPERATOR 0
#endif
#ifndef RVMAX
#define RVMAX 9         /* revisions: a run makes fewer than RVMAX successful writes */
#endif
#ifndef NLATE
#define NLATE 1         /* client writes that apply after their sender stopped waiting */
#endif
#ifndef LEASE
#define LEASE 4         /* leaseDurationSeconds = expires */
#endif
#ifndef GRACE
#define GRACE 1         /* expiryGrace of clients */
#endif
#ifndef CGRACE
#define CGRACE 1        /* the controller's grace */
#endif
#ifndef OGRACE
#define OGRACE 1        /* locks release --grace */
#endif
#ifndef RETAIN
#define RETAIN 1        /* the controller's retention of free leases */
#endif
#ifdef MUTATION_NO_MARGIN
#define MARGIN 0
#endif
#ifndef MARGIN
#define MARGIN 1        /* safetyMargin */
#endif
#ifdef MUTATION_SKEW
#define SKEW 2
#endif
#ifndef SKEW
#define SKEW 1          /* largest difference between two clocks */
#endif
#ifndef WALLSKEW
#define WALLSKEW 2      /* client 1's wall clock runs this far ahead (MUTATION_RENEWTIME only) */
#endif

#define VALIDFOR (LEASE - MARGIN)
#define WAIT     (LEASE + GRACE)
#define CWAIT    (LEASE + CGRACE)
#define OWAIT    (LEASE + OGRACE)
#if CWAIT > RETAIN
#define CCAP CWAIT
#else
#define CCAP RETAIN
#endif

/* observers: clients 0..NC-1, then the controller, then the operator */
#define CI NC
#define OI (NC + CONTROLLER)
#define NP (NC + CONTROLLER + OPERATOR)

/* requests */
#define NOOP   0
#define CREATE 1
#define UPDATE 2
#define DELETE 3

/* what an observer knows of the lease */
#define UNKNOWN 0
#define ABSENT  1
#define SEEN    2

/* client states */
#define IDLE      0
#define ACQ       1   /* acquiring: reading, waiting, deciding */
#define AW_ACQ    2   /* an acquiring write is outstanding */
#define HOLD      3
#define AW_RENEW  4
#define AW_FREE   5   /* the release write */
#define REREAD    6   /* release: read again after a conflict */
#define ABANDON   7   /* gave up with a write pending: read once */
#define AW_AB     8   /* the abandon's free */
#define DONE      9
#define DEAD      10

/* ---- the store: one lease ---- */
bool exists;
byte holder;        /* 0: free; else an acquisition id */
byte uid;           /* uid of the current (or last) lease: creates so far */
byte rv;            /* resourceVersion of the lease while it exists; one global revision */
#ifdef MUTATION_RENEWTIME
byte writer;        /* whose wall clock stamped renewTime */
#endif
byte maxtok;        /* greatest fencing token handed out (P2) */
byte lates;         /* client writes applied late so far */

/* ---- clocks: lead[p] = clock p - the slowest clock ---- */
byte lead[NP];

/* ---- observations (clients, controller, operator) ---- */
byte view[NP];
byte o_uid[NP];     /* 0: no observation */
byte o_rv[NP];
byte o_holder[NP];
byte o_age[NP];     /* ticks of the observer's clock since it first saw (o_uid, o_rv) */

/* ---- client writes that lost their answer and may still apply (one slot per client) ---- */
byte g_op[NC];
byte g_uid[NC];
byte g_rv[NC];
byte g_h[NC];

/* ---- clients ---- */
byte st[NC];
byte cur[NC];       /* id of the current acquisition (holderIdentity) */
bool lost[NC];      /* the signal fired */
byte rem[NC];       /* ticks of the client's clock until its deadline */
byte tok[NC];
byte h_uid[NC];
byte h_rv[NC];
byte nren[NC];
bool retried[NC];
byte q_op[NC];      /* the outstanding write */
byte q_uid[NC];
byte q_rv[NC];
byte q_h[NC];
bool applied[NC];
bool q_ok[NC];
byte a_uid[NC];     /* the record in its answer */
byte a_rv[NC];
byte req_age[NC];   /* ticks since the outstanding write was sent */
bool pend[NC];      /* a write of this acquisition has an unknown outcome */
byte pend_age[NC];  /* ticks since the earliest such write was sent */
#ifdef LIVENESS
bool got1;          /* client 1 acquired */
byte faults;        /* answers lost so far */
#ifndef NFAULT
#define NFAULT 1
#endif
#endif

int sc;         /* scratch, always 0 between steps */
byte q;
byte allup;

#define VALID(c) ((st[c] == HOLD || st[c] == AW_RENEW) && !lost[c] && rem[c] > 0)
#define OWNER(h) (((h) - 1) / NACQ)
#define HOLDER_VALID(h) ((h) != 0 && cur[OWNER(h)] == (h) && VALID(OWNER(h)))

/* ---- the store's operations, applied atomically ---- */
inline stamp(who) {
#ifdef MUTATION_RENEWTIME
  writer = who
#else
  skip
#endif
}

inline newrev() {
#ifdef MUTATION_RV_PER_OBJECT
  rv = 1
#else
  rv++
#endif
}

inline apply(op, pu, pr, ph, who, ok) {
  ok = false;
  if
  :: op == CREATE && !exists -> exists = true; uid++; newrev(); holder = ph; stamp(who); ok = true
  :: op == UPDATE && exists && uid == pu && rv == pr -> rv++; holder = ph; stamp(who); ok = true
#ifdef MUTATION_NO_UID
  :: op == UPDATE && !exists -> exists = true; uid++; newrev(); holder = ph; stamp(who); ok = true
#endif
  :: op == DELETE && exists && uid == pu && rv == pr -> exists = false; holder = 0; rv++; ok = true
  :: else -> skip
  fi
}

/* ---- observing ---- */
inline first_seen(p, cap) {
#ifdef MUTATION_RENEWTIME
  /* first-seen taken from renewTime: the writer's wall clock at its write, read on this wall clock */
  sc = (p == 1 -> WALLSKEW : 0) + lead[p] - (writer == 1 -> WALLSKEW : 0) - lead[writer];
  if
  :: sc < 0 -> o_age[p] = 0
  :: sc > cap -> o_age[p] = cap
  :: else -> o_age[p] = sc
  fi;
  sc = 0
#else
  o_age[p] = 0
#endif
}

inline look(p, cap) {
  if
  :: exists ->
     if
#ifdef MUTATION_OBSERVE_RESET
     :: o_uid[p] == uid && o_rv[p] == rv -> first_seen(p, cap)
#else
     :: o_uid[p] == uid && o_rv[p] == rv -> skip    /* unchanged: keeps its first-seen time */
#endif
     :: else -> o_uid[p] = uid; o_rv[p] = rv; o_holder[p] = holder; first_seen(p, cap)
     fi;
     view[p] = SEEN
  :: else -> view[p] = ABSENT; o_uid[p] = 0; o_rv[p] = 0; o_holder[p] = 0; o_age[p] = 0
  fi
}

inline forget(i) {
  o_uid[i] = 0; o_rv[i] = 0; o_holder[i] = 0; o_age[i] = 0
}

/* ---- P1 and P2 ---- */
inline exclusive(i) {
  assert(i == 0 || !VALID(0));
#if NC > 1
  assert(i == 1 || !VALID(1));
#endif
#if NC > 2
  assert(i == 2 || !VALID(2));
#endif
}

/* ---- client helpers ---- */
inline send(i, op, pu, pr, ph) {
  q_op[i] = op; q_uid[i] = pu; q_rv[i] = pr; q_h[i] = ph; applied[i] = false; q_ok[i] = false;
  req_age[i] = 0
}

inline clear_req(i) {
  q_op[i] = NOOP; q_uid[i] = 0; q_rv[i] = 0; q_h[i] = 0; applied[i] = false; q_ok[i] = false;
  a_uid[i] = 0; a_rv[i] = 0; req_age[i] = 0
}

/* No answer in time: the write may still apply later (one slot), or never. */
inline lose_answer(i) {
#ifdef LIVENESS
  faults++;
#endif
  if
  :: !applied[i] && g_op[i] == NOOP && lates < NLATE -> lates++; g_op[i] = q_op[i]; g_uid[i] = q_uid[i]; g_rv[i] = q_rv[i]; g_h[i] = q_h[i]
  :: true -> skip
  fi
}

inline acquired(i, u, r, remain) {
  st[i] = HOLD; lost[i] = false; nren[i] = 0; h_uid[i] = u; h_rv[i] = r; tok[i] = r; rem[i] = remain;
  pend[i] = false; pend_age[i] = 0; view[i] = UNKNOWN; forget(i);
#ifdef LIVENESS
  got1 = got1 || i == 1;
#endif
  if
  :: rem[i] > 0 -> exclusive(i); assert(tok[i] > maxtok); maxtok = tok[i]
  :: else -> lost[i] = true    /* past its deadline on arrival: it is released at once */
  fi
}

inline end_acq(i) {
  st[i] = IDLE; lost[i] = false; rem[i] = 0; tok[i] = 0; h_uid[i] = 0; h_rv[i] = 0; nren[i] = 0;
  retried[i] = false; pend[i] = false; pend_age[i] = 0; view[i] = UNKNOWN; clear_req(i)
}

#ifdef LIVENESS
#define CAN_GIVE_UP(i) false
#define CAN_LOSE (faults < NFAULT)
#else
#define CAN_GIVE_UP(i) true
#define CAN_LOSE true
#endif

/* A client that is done decides nothing more: its clock no longer counts (it stays at 0). */
#define TICKS(p) ((p) >= NC || st[p] != DONE)

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

#define HELD_BY_OTHER(i) (o_holder[i] != 0 && !(o_holder[i] == cur[i] && pend[i]))

proctype client(byte i) {
  byte k = 0;   /* acquisitions begun */
end:
  do
  /* a new acquisition, with a new identity */
  :: atomic { st[i] == IDLE && k < NACQ -> k++; cur[i] = i * NACQ + k; view[i] = UNKNOWN; st[i] = ACQ }
  :: atomic { st[i] == IDLE && k == NACQ -> st[i] = DONE; cur[i] = 0; forget(i); lead[i] = 0; normalize() }

  /* acquiring: read when the view is unknown or the lease is held by someone else and not expired */
  :: atomic { st[i] == ACQ &&
              (view[i] == UNKNOWN || (view[i] == SEEN && HELD_BY_OTHER(i) && o_age[i] < WAIT)) ->
              look(i, WAIT) }
  :: atomic { st[i] == ACQ && view[i] == SEEN && o_holder[i] == cur[i] && pend[i] ->
#ifdef MUTATION_READBACK_NOW
              acquired(i, o_uid[i], o_rv[i], VALIDFOR)
#else
              acquired(i, o_uid[i], o_rv[i], VALIDFOR - pend_age[i])
#endif
            }
  :: atomic { st[i] == ACQ && view[i] == ABSENT -> send(i, CREATE, 0, 0, cur[i]); st[i] = AW_ACQ }
  :: atomic { st[i] == ACQ && view[i] == SEEN && !(o_holder[i] == cur[i] && pend[i]) &&
              (o_holder[i] == 0 || o_age[i] >= WAIT) ->
              send(i, UPDATE, o_uid[i], o_rv[i], cur[i]); st[i] = AW_ACQ }
  :: atomic { st[i] == ACQ && pend[i] && CAN_GIVE_UP(i) -> st[i] = ABANDON }

  /* the store applies the outstanding write */
  :: atomic { (st[i] == AW_ACQ || st[i] == AW_RENEW) && !applied[i] && rv < RVMAX ->
              apply(q_op[i], q_uid[i], q_rv[i], q_h[i], i, q_ok[i]); applied[i] = true;
              if
              :: q_ok[i] -> a_uid[i] = uid; a_rv[i] = rv
              :: else -> skip
              fi }

  /* answers */
  :: atomic { st[i] == AW_ACQ && applied[i] ->
              if
              :: q_ok[i] ->
#ifdef MUTATION_DEADLINE_ANSWER
                 acquired(i, a_uid[i], a_rv[i], VALIDFOR)
#else
                 acquired(i, a_uid[i], a_rv[i], VALIDFOR - req_age[i])
#endif
              :: else -> st[i] = ACQ; view[i] = UNKNOWN    /* conflict: read again */
              fi;
              clear_req(i) }
  :: atomic { st[i] == AW_ACQ && CAN_LOSE ->
              lose_answer(i);
              if
              :: !pend[i] -> pend[i] = true; pend_age[i] = req_age[i]
#ifdef MUTATION_PENDING_LATEST
              :: else -> pend_age[i] = req_age[i]
#else
              :: else -> skip
#endif
              fi;
              st[i] = ACQ; view[i] = UNKNOWN; clear_req(i) }

  /* holding */
  :: atomic { st[i] == HOLD && !lost[i] && rem[i] > 0 && nren[i] < NREN ->
              nren[i]++; send(i, UPDATE, h_uid[i], h_rv[i], cur[i]); st[i] = AW_RENEW }
  :: atomic { st[i] == HOLD && !lost[i] && rem[i] == 0 -> lost[i] = true }
  :: atomic { st[i] == HOLD -> lost[i] = true; send(i, UPDATE, h_uid[i], h_rv[i], 0); st[i] = AW_FREE }
  :: atomic { st[i] == AW_RENEW && applied[i] ->
              if
              :: q_ok[i] ->
                 h_uid[i] = a_uid[i]; h_rv[i] = a_rv[i];
                 if
                 :: !lost[i] && rem[i] == 0 ->
                    lost[i] = true    /* answered after the deadline: a lock that ended stays ended */
                 :: !lost[i] && rem[i] > 0 ->
#ifdef MUTATION_DEADLINE_ANSWER
                    rem[i] = VALIDFOR;
#else
                    rem[i] = VALIDFOR - req_age[i];
#endif
                    if
                    :: rem[i] > 0 -> exclusive(i); assert(tok[i] == maxtok)
                    :: else -> skip
                    fi
                 :: else -> skip
                 fi
              :: else -> lost[i] = true    /* taken */
              fi;
              st[i] = HOLD; clear_req(i) }
  :: atomic { st[i] == AW_RENEW && CAN_LOSE -> lose_answer(i); lost[i] = true; st[i] = HOLD; clear_req(i) }

  /* releasing */
  :: atomic { st[i] == AW_FREE && rv < RVMAX ->
              apply(q_op[i], q_uid[i], q_rv[i], q_h[i], i, q_ok[i]);
              if
              :: !q_ok[i] && !retried[i] -> st[i] = REREAD
              :: else -> end_acq(i)
              fi }
  :: atomic { st[i] == AW_FREE && CAN_LOSE -> lose_answer(i); end_acq(i) }
  :: atomic { st[i] == REREAD ->
              if
              :: exists && holder == cur[i] -> retried[i] = true; send(i, UPDATE, uid, rv, 0); st[i] = AW_FREE
              :: else -> end_acq(i)
              fi }

  /* gave up with a write of unknown outcome: one read, and free the lease if it names us */
  :: atomic { st[i] == ABANDON ->
              if
              :: exists && holder == cur[i] -> send(i, UPDATE, uid, rv, 0); st[i] = AW_AB
              :: else -> end_acq(i)
              fi }
  :: atomic { st[i] == AW_AB && rv < RVMAX -> apply(q_op[i], q_uid[i], q_rv[i], q_h[i], i, q_ok[i]); end_acq(i) }
  :: atomic { st[i] == AW_AB && CAN_LOSE -> lose_answer(i); end_acq(i) }

#ifdef LIVENESS
  /* client 0 may die at any moment, holding the lock or not */
  :: atomic { i == 0 && st[i] != DEAD -> st[i] = DEAD }
#endif
  od
}

/*
 * The controller: level-based, acting on its last observation (which may be stale). Its writes are
 * applied as it decides: a write it sent earlier that applies later is the same as deciding then from
 * the same observation (it reads no answer), and one that fails its preconditions changes nothing.
 */
#if CONTROLLER
inline controller_writes(op) {
  was = exists; bu = uid; br = rv; bh = holder;
#ifdef MUTATION_CONTROLLER_BLIND
  apply(op, uid, rv, 0, CI, ok);
#else
  apply(op, o_uid[CI], o_rv[CI], 0, CI, ok);
#endif
  if
  :: ok && was ->
     /* P3: the lease it writes is the one it looked at, never renewed since */
     assert(bu == o_uid[CI] && br == o_rv[CI]);
     if
     :: op == UPDATE -> assert(!HOLDER_VALID(bh))    /* it frees no valid holder */
     :: else -> assert(bh == 0)                      /* it deletes only free leases */
     fi
  :: else -> skip
  fi;
  view[CI] = UNKNOWN; ok = false; was = false; bu = 0; br = 0; bh = 0
}

active proctype controller() {
  bool ok;
  bool was;
  byte bu;
  byte br;
  byte bh;
end:
  do
  :: atomic { look(CI, CCAP) }
  :: atomic { view[CI] == SEEN && o_holder[CI] != 0 && o_age[CI] >= CWAIT && rv < RVMAX -> controller_writes(UPDATE) }
  :: atomic { view[CI] == SEEN && o_holder[CI] == 0 && o_age[CI] >= RETAIN && rv < RVMAX -> controller_writes(DELETE) }
  od
}
#endif

/* ---- the operator: `locks release` (with WITH_FORCE: `locks release --force`) ---- */
#if OPERATOR
active proctype operator() {
  bool ok;
end:
  do
  :: atomic { look(OI, OWAIT) }
#ifdef WITH_FORCE
  :: atomic { view[OI] == SEEN && o_holder[OI] != 0 && rv < RVMAX ->
#else
  :: atomic { view[OI] == SEEN && o_holder[OI] != 0 && o_age[OI] >= OWAIT && rv < RVMAX ->
#endif
              apply(UPDATE, o_uid[OI], o_rv[OI], 0, OI, ok); view[OI] = UNKNOWN; ok = false }
  od
}
#endif

/* ---- the network: writes whose answer was lost apply late, or never ---- */
inline late(p, ok) {
  apply(g_op[p], g_uid[p], g_rv[p], g_h[p], p, ok);
  g_op[p] = NOOP; g_uid[p] = 0; g_rv[p] = 0; g_h[p] = 0
}

active proctype net() {
  bool ok;
end:
  do
  :: atomic { g_op[0] != NOOP && rv < RVMAX -> late(0, ok); ok = false }
#if NC > 1
  :: atomic { g_op[1] != NOOP && rv < RVMAX -> late(1, ok); ok = false }
#endif
#if NC > 2
  :: atomic { g_op[2] != NOOP && rv < RVMAX -> late(2, ok); ok = false }
#endif
  od
}

/* ---- time ---- */
inline age_client(p) {
  if
  :: o_uid[p] != 0 && o_age[p] < WAIT -> o_age[p]++
  :: else -> skip
  fi;
  if
  :: (st[p] == AW_ACQ || st[p] == AW_RENEW) && req_age[p] < VALIDFOR -> req_age[p]++
  :: else -> skip
  fi;
  if
  :: pend[p] && pend_age[p] < VALIDFOR -> pend_age[p]++
  :: else -> skip
  fi;
  if
  :: rem[p] > 0 -> rem[p]--
  :: else -> skip
  fi
}

inline age_observer(p, cap) {
  if
  :: o_uid[p] != 0 && o_age[p] < cap -> o_age[p]++
  :: else -> skip
  fi
}

active proctype clock() {
end:
  do
  :: d_step { lead[0] < SKEW && TICKS(0) -> lead[0]++; age_client(0); normalize() }
#if NC > 1
  :: d_step { lead[1] < SKEW && TICKS(1) -> lead[1]++; age_client(1); normalize() }
#endif
#if NC > 2
  :: d_step { lead[2] < SKEW && TICKS(2) -> lead[2]++; age_client(2); normalize() }
#endif
#if CONTROLLER
  :: d_step { lead[CI] < SKEW -> lead[CI]++; age_observer(CI, CCAP); normalize() }
#endif
#if OPERATOR
  :: d_step { lead[OI] < SKEW -> lead[OI]++; age_observer(OI, OWAIT); normalize() }
#endif
  od
}

init {
  atomic {
    run client(0);
#if NC > 1
    run client(1);
#endif
#if NC > 2
    run client(2);
#endif
  }
}

#ifdef LIVENESS
ltl acquirable { <> got1 }
#endif
