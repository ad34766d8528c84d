/*  Consumer offsets: two instances of one consumer follow the same stream
    and each event is handled by exactly one of them, even when an instance
    rolls its work back and retries. A new instance resumes after the
    stored offset. */
#include "test_bus_fixture.h"

#include "hcp_db.h"

#include <pthread.h>
#include <stdatomic.h>

#define EVENTS 2000

typedef struct {
    fx_t *fx;
    int index;
    unsigned int seed;
    atomic_int *stop;
    int won;         //  claims that returned 1 and were committed
    int lost;        //  claims that returned 0
    int rolled_back; //  claims undone by a rollback, then retried
    int failures;
} instance_t;

static bool
s_exec (hcp_db_t *db, const char *sql)
{
    return hcp_db_exec (db, sql) == 0;
}

static void *
s_instance (void *args)
{
    instance_t *self = args;
    hcp_db_t *db = hcp_db_new (self->fx->conninfo, "test-instance");
    if (hcp_db_ensure (db, 10000, NULL) != 0) {
        self->failures++;
        hcp_db_destroy (&db);
        return NULL;
    }
    hcp_db_prepare (db, "handle", "INSERT INTO handled (seq, instance) VALUES ($1, $2)");
    uint64_t offset = 0;
    if (hcp_offset_load (db, "test-consumer", &offset) != 0)
        self->failures++;
    hcp_sub_t *sub = hcp_sub_new (self->fx->subscribe, self->fx->conninfo, offset, NULL);
    while (!atomic_load (self->stop) || hcp_sub_last_seq (sub) < EVENTS) {
        hcp_event_t *event;
        int rc = hcp_sub_next (sub, 100, &event);
        if (rc < 0)
            self->failures++;
        if (rc != 1)
            continue;
        while (1) {
            if (!s_exec (db, "BEGIN")) {
                self->failures++;
                break;
            }
            int claimed = hcp_offset_claim (db, "test-consumer", event->seq);
            if (claimed < 0) {
                self->failures++;
                s_exec (db, "ROLLBACK");
                break;
            }
            if (claimed == 0) {
                self->lost++;
                s_exec (db, "ROLLBACK");
                break;
            }
            char seq[24], instance[8];
            snprintf (seq, sizeof seq, "%llu", (unsigned long long) event->seq);
            snprintf (instance, sizeof instance, "%d", self->index);
            const char *values[2] = {seq, instance};
            PGresult *res = hcp_db_run (db, "handle", 2, values);
            if (!hcp_db_ok (db, res))
                self->failures++;
            PQclear (res);
            //  Sometimes the work is slow (the other instance waits on our
            //  lock), sometimes it fails and is retried.
            if (rand_r (&self->seed) % 20 == 0)
                hcp_test_sleep_ms (5);
            if (rand_r (&self->seed) % 10 == 0) {
                s_exec (db, "ROLLBACK");
                self->rolled_back++;
                continue;
            }
            if (s_exec (db, "COMMIT"))
                self->won++;
            else
                self->failures++;
            break;
        }
        hcp_event_destroy (&event);
    }
    hcp_sub_destroy (&sub);
    hcp_db_destroy (&db);
    return NULL;
}

static void
test_two_instances_handle_each_event_once (void **state)
{
    (void) state;
    fx_t fx;
    fx_setup (&fx, "bus_offsets");
    hcp_test_sql_exec (fx.conn, "CREATE TABLE handled (seq bigint NOT NULL, instance int)");
    fx_start_bus (&fx);
    fx_start_relay (&fx, 0);
    //  Half before the instances start (they catch up), half while they run.
    for (int i = 0; i < 10; i++)
        fx_insert (fx.conn, "before", i * 100, 100);

    atomic_int stop = 0;
    instance_t instances[2];
    pthread_t threads[2];
    for (int i = 0; i < 2; i++) {
        instances[i] = (instance_t){&fx, i, (unsigned) (getpid () + i), &stop, 0, 0, 0, 0};
        assert_int_equal (pthread_create (&threads[i], NULL, s_instance, &instances[i]), 0);
    }
    for (int i = 0; i < 50; i++) {
        fx_insert (fx.conn, "during", i * 20, 20);
        hcp_test_sleep_ms (10);
    }
    atomic_store (&stop, 1);
    for (int i = 0; i < 2; i++) {
        pthread_join (threads[i], NULL);
        printf ("instance %d: handled %d, found handled %d, rolled back and retried %d\n", i,
                instances[i].won, instances[i].lost, instances[i].rolled_back);
        assert_int_equal (instances[i].failures, 0);
    }
    //  Each event handled exactly once, by one instance or the other.
    assert_int_equal (hcp_test_sql_int (fx.conn, "SELECT count(*) FROM handled"), EVENTS);
    assert_int_equal (hcp_test_sql_int (fx.conn, "SELECT count(DISTINCT seq) FROM handled"),
                      EVENTS);
    assert_int_equal (hcp_test_sql_int (fx.conn, "SELECT max(seq) FROM handled"), EVENTS);
    assert_int_equal (instances[0].won + instances[1].won, EVENTS);
    //  Every event was seen by both: one handled it, the other found it done.
    assert_int_equal (instances[0].lost + instances[1].lost, EVENTS);
    assert_true (instances[0].rolled_back + instances[1].rolled_back > 0);
    assert_int_equal (hcp_test_sql_int (fx.conn, "SELECT last_seq FROM consumer_offsets"
                                                 " WHERE consumer = 'test-consumer'"),
                      EVENTS);

    //  A restarted instance resumes after the offset, and claims below it
    //  are refused.
    hcp_db_t *db = hcp_db_new (fx.conninfo, "test");
    assert_int_equal (hcp_db_ensure (db, 10000, NULL), 0);
    uint64_t offset = 0;
    assert_int_equal (hcp_offset_load (db, "test-consumer", &offset), 0);
    assert_int_equal (offset, EVENTS);
    assert_int_equal (hcp_offset_load (db, "nobody-yet", &offset), 0);
    assert_int_equal (offset, 0);
    assert_int_equal (hcp_offset_claim (db, "test-consumer", 5), 0);
    assert_int_equal (hcp_offset_claim (db, "test-consumer", EVENTS), 0);
    assert_int_equal (hcp_offset_claim (db, "another", 1), 1);
    assert_int_equal (hcp_offset_claim (db, "another", 1), 0);
    hcp_db_destroy (&db);

    //  The outbox writer: an event emitted in a rolled-back transaction
    //  never exists; one in a committed transaction reaches subscribers.
    db = hcp_db_new (fx.conninfo, "test");
    assert_int_equal (hcp_db_ensure (db, 10000, NULL), 0);
    assert_int_equal (hcp_db_exec (db, "BEGIN"), 0);
    assert_int_equal (hcp_event_emit (db, "test.rolled_back", "x", "ab", 2), 0);
    assert_int_equal (hcp_db_exec (db, "ROLLBACK"), 0);
    assert_int_equal (hcp_db_exec (db, "BEGIN"), 0);
    const unsigned char payload[] = {0, 1, 2, 0xff, 0};
    assert_int_equal (hcp_event_emit (db, "test.emitted", "key-1", payload, sizeof payload),
                      0);
    assert_int_equal (hcp_event_emit (db, "test.empty", "key-2", NULL, 0), 0);
    assert_int_equal (hcp_db_exec (db, "COMMIT"), 0);
    hcp_db_destroy (&db);
    hcp_sub_t *sub = hcp_sub_new (fx.subscribe, fx.conninfo, EVENTS, "test.");
    hcp_event_t *event = NULL;
    assert_int_equal (hcp_sub_next (sub, 10000, &event), 1);
    assert_int_equal (event->seq, EVENTS + 1);
    assert_string_equal (event->type, "test.emitted");
    assert_string_equal (event->key, "key-1");
    assert_int_equal (event->payload_size, sizeof payload);
    assert_memory_equal (event->payload, payload, sizeof payload);
    assert_true (event->at_ms > 1700000000000LL);
    hcp_event_destroy (&event);
    assert_int_equal (hcp_sub_next (sub, 10000, &event), 1);
    assert_string_equal (event->type, "test.empty");
    assert_int_equal (event->payload_size, 0);
    hcp_event_destroy (&event);
    assert_int_equal (hcp_sub_next (sub, 500, &event), 0);
    hcp_sub_destroy (&sub);
    fx_teardown (&fx);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_two_instances_handle_each_event_once),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
