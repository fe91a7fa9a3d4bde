/* tools/cli_completion.c - `wisp completion bash`: a bash completion
 * script written from the verb and flag tables, so it offers exactly the
 * commands and flags the parser takes.
 *
 * Install it with `wisp completion bash > /etc/bash_completion.d/wisp`
 * (or /usr/share/bash-completion/completions/wisp), or for one shell with
 * `source <(wisp completion bash)`. The build also writes it to
 * tools/wisp.bash in the build tree. */
#include <stdio.h>
#include <string.h>

#include "cli_cmd.h"

/* The offline tools of wisp.c, which have no table here. */
static const char *const offline[][2] = {
    {"admin", "--data user namespace"},
    {"image", "--data import list rm"},
};

static void flag_words(const struct cli_verb *v)
{
    for (int id = 0; id < OPT__COUNT; id++) {
        if (!cli_verb_takes(v, id))
            continue;
        printf(" --%s", cli_opts[id].lng);
        if (cli_opts[id].shrt)
            printf(" -%c", cli_opts[id].shrt);
    }
}

/* Flags whose value is the next word: the word after them is neither a
 * noun nor a verb. */
static void value_flags(void)
{
    const char *sep = "";
    for (int id = 0; id < OPT__COUNT; id++) {
        if (cli_opts[id].arg == ARG_NONE)
            continue;
        printf("%s--%s", sep, cli_opts[id].lng);
        sep = "|";
        if (cli_opts[id].shrt)
            printf("|-%c", cli_opts[id].shrt);
    }
}

static void nouns_case(void)
{
    printf("    \"\") words=\"");
    const char *prev = "";
    for (size_t i = 0; i < cli_nverbs; i++)
        if (strcmp(cli_verbs[i].noun, prev) != 0)
            printf("%s ", prev = cli_verbs[i].noun);
    for (size_t i = 0; i < WISP_ARRAY_LEN(offline); i++)
        printf("%s ", offline[i][0]);
    printf("help\" ;;\n");
}

static void verbs_case(void)
{
    for (size_t i = 0; i < cli_nverbs; i++) {
        const struct cli_verb *v = &cli_verbs[i];
        if (i == 0 || strcmp(cli_verbs[i - 1].noun, v->noun) != 0) {
            printf("    %s) case \"$verb\" in\n", v->noun);
            if (v->verb) { /* the verbs of the noun */
                printf("        \"\") words=\"");
                for (size_t k = i; k < cli_nverbs && strcmp(cli_verbs[k].noun, v->noun) == 0; k++)
                    printf("%s ", cli_verbs[k].verb);
                printf("\" ;;\n");
            }
        }
        printf("        %s) flags=\"", v->verb ? v->verb : "*");
        flag_words(v);
        printf("\" ;;\n");
        if (i + 1 == cli_nverbs || strcmp(cli_verbs[i + 1].noun, v->noun) != 0)
            printf("        esac ;;\n");
    }
    for (size_t i = 0; i < WISP_ARRAY_LEN(offline); i++)
        printf("    %s) words=\"%s\" ;;\n", offline[i][0], offline[i][1]);
}

int cli_completion_bash(struct cli_ctx *x)
{
    (void)x;
    printf("# bash completion for wisp; written by `wisp completion bash`\n"
           "_wisp() {\n"
           "    local cur=${COMP_WORDS[COMP_CWORD]} noun= verb= words= flags= i w\n"
           "    for ((i = 1; i < COMP_CWORD; i++)); do\n"
           "        w=${COMP_WORDS[i]}\n"
           "        case \"$w\" in\n"
           "        ");
    value_flags();
    printf(") ((i++)); continue ;;\n"
           "        -*) continue ;;\n"
           "        esac\n"
           "        if [[ -z $noun ]]; then noun=$w; elif [[ -z $verb ]]; then verb=$w; fi\n"
           "    done\n"
           "    case \"$noun\" in\n");
    nouns_case();
    verbs_case();
    printf("    esac\n"
           "    if [[ $cur == -* ]]; then\n"
           "        COMPREPLY=($(compgen -W \"$flags\" -- \"$cur\"))\n"
           "    elif [[ -n $words ]]; then\n"
           "        COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
           "    else\n"
           "        COMPREPLY=($(compgen -f -- \"$cur\"))\n"
           "    fi\n"
           "}\n"
           "complete -o filenames -F _wisp wisp\n");
    return 0;
}
