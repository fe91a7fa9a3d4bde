/* lmdb_poke DIR DB NS PATH HEXBYTES - writes raw bytes under an entity key
 * ("NS\0PATH") of a stopped wispd's store. The integration tests use it to
 * plant records no API call can write (corrupt or from a newer schema). */
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: lmdb_poke DIR DB NS PATH HEXBYTES\n");
        return 2;
    }
    size_t hl = strlen(argv[5]), nl = strlen(argv[3]), pl = strlen(argv[4]);
    unsigned char *val = malloc(hl / 2 + 1);
    char *key = malloc(nl + pl + 1);
    if (!val || !key || hl % 2)
        return 2;
    for (size_t i = 0; i < hl / 2; i++)
        if (sscanf(argv[5] + 2 * i, "%2hhx", &val[i]) != 1)
            return 2;
    memcpy(key, argv[3], nl);
    key[nl] = '\0';
    memcpy(key + nl + 1, argv[4], pl);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = {nl + 1 + pl, key}, v = {hl / 2, val};
    int rc;
    if ((rc = mdb_env_create(&env)) || (rc = mdb_env_set_maxdbs(env, 8)) ||
        (rc = mdb_env_open(env, argv[1], 0, 0600)) || (rc = mdb_txn_begin(env, NULL, 0, &txn)) ||
        (rc = mdb_dbi_open(txn, argv[2], 0, &dbi)) || (rc = mdb_put(txn, dbi, &k, &v, 0)) ||
        (rc = mdb_txn_commit(txn))) {
        fprintf(stderr, "lmdb_poke: %s\n", mdb_strerror(rc));
        return 1;
    }
    mdb_env_close(env);
    free(key);
    free(val);
    return 0;
}
