/* A stand-in for an old computecore.dll + kernel32.dll, for testing the native backend's lazy
 * loading on hosts without Windows: it exports only a few functions, so the loader must
 * resolve what is there and report precisely what is not. Built by the tests with cc. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct Operation { int32_t type; void *context; } Operation;

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

void *LocalFree(void *memory) { free(memory); frees++; return NULL; }

int FakeFreeCount(void) { return frees; }
