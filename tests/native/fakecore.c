/* A stand-in for an old computecore.dll + kernel32.dll, for testing the native backend's lazy
 * loading on hosts without Windows: it exports only a few functions, so the loader must
 * resolve what is there and report precisely what is not. Built by the tests with cc.
 *
 * It also answers the handful of calls the typed ComputeSystem makes to open a system, start
 * it and read its properties, completing each operation at once: benchmarks/bench_api.py runs
 * the typed API over it, where the C side costs next to nothing, so the wrapper's own cost
 * shows. It does not export HcsCreateComputeSystem or HcsWaitForProcessExit (the tests of the
 * loader's error reports rely on their absence). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct Operation {
    int32_t type;
    void *context;
    const char *result; /* the finished call's result document (static), or NULL */
} Operation;

typedef struct System { void *callback; void *context; } System;

static int frees;

void *HcsCreateOperation(void *context, void *callback) {
    Operation *op = calloc(1, sizeof *op);
    (void)callback;
    op->type = -1; /* HcsOperationTypeNone until used */
    op->context = context;
    return op;
}

int32_t HcsGetOperationType(void *operation) { return ((Operation *)operation)->type; }

void *HcsGetOperationContext(void *operation) { return ((Operation *)operation)->context; }

void HcsCloseOperation(void *operation) { free(operation); }

/* Writes a freshly allocated UTF-16 document and reports "not started", as HCS does for an
 * operation that was never handed to a call. */
long HcsGetOperationResult(void *operation, uint16_t **document) {
    static const char text[] = "{\"Error\":-2143878891}";
    size_t n = sizeof text;
    uint16_t *copy = malloc(n * sizeof *copy);
    (void)operation;
    for (size_t i = 0; i < n; i++) copy[i] = (uint16_t)(unsigned char)text[i];
    *document = copy;
    return (long)(int32_t)0x80370115;
}

/* Operation types of HCS_OPERATION_TYPE used below. */
enum { TypeStart = 2, TypeGetProperties = 9 };

static const char properties[] =
    "{\"Id\":\"bench\",\"SystemType\":\"Container\",\"Name\":\"bench\",\"Owner\":\"pyhcs\","
    "\"RuntimeId\":\"5f0e6f1c-3d2b-4c1a-9e8f-7a6b5c4d3e2f\",\"RuntimeOsType\":\"Windows\","
    "\"State\":\"Running\"}";

static uint16_t *widen(const char *text) {
    size_t n = strlen(text) + 1;
    uint16_t *copy = malloc(n * sizeof *copy);
    for (size_t i = 0; i < n; i++) copy[i] = (uint16_t)(unsigned char)text[i];
    return copy;
}

long HcsOpenComputeSystem(const uint16_t *id, unsigned long access, void **system) {
    (void)id;
    (void)access;
    *system = calloc(1, sizeof(System));
    return 0;
}

void HcsCloseComputeSystem(void *system) { free(system); }

long HcsSetComputeSystemCallback(void *system, int32_t options, void *context, void *callback) {
    (void)options;
    ((System *)system)->context = context;
    ((System *)system)->callback = callback;
    return 0;
}

/* Never exits: a zero-timeout wait reports the timeout, as HCS does for a running system. */
long HcsWaitForComputeSystemExit(void *system, unsigned long timeout, uint16_t **result) {
    (void)system;
    (void)timeout;
    if (result) *result = NULL;
    return (long)(int32_t)0x80370118; /* HCS_E_OPERATION_TIMEOUT */
}

long HcsStartComputeSystem(void *system, void *operation, const uint16_t *options) {
    (void)system;
    (void)options;
    ((Operation *)operation)->type = TypeStart;
    ((Operation *)operation)->result = NULL;
    return 0;
}

long HcsGetComputeSystemProperties(void *system, void *operation, const uint16_t *query) {
    (void)system;
    (void)query;
    ((Operation *)operation)->type = TypeGetProperties;
    ((Operation *)operation)->result = properties;
    return 0;
}

/* Every call above completes at once: the wait hands out the result document, if any. */
long HcsWaitForOperationResult(void *operation, unsigned long timeout, uint16_t **document) {
    Operation *op = operation;
    (void)timeout;
    if (op->type == -1) return (long)(int32_t)0x80370115; /* HCS_E_OPERATION_NOT_STARTED */
    if (document) *document = op->result ? widen(op->result) : NULL;
    return 0;
}

void *LocalFree(void *memory) { free(memory); frees++; return NULL; }

int FakeFreeCount(void) { return frees; }
