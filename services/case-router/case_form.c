/*  case_form — see case_form.h. */
#include "case_form.h"

#include "hcp_clock.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
hcp_case_form_number (int year, int number, char buf[HCP_CASE_FORM_NUMBER_LEN])
{
    assert (buf);
    buf[0] = 0;
    if (year < 1000 || year > 9999 || number < 1 || number > 999999)
        return -1;
    snprintf (buf, HCP_CASE_FORM_NUMBER_LEN, "%04d-%06d", year, number);
    return 0;
}

int
hcp_case_form_number_parse (const char *text, int *year, int *number)
{
    if (!text || strlen (text) != 11 || text[4] != '-')
        return -1;
    for (int i = 0; i < 11; i++)
        if (i != 4 && (text[i] < '0' || text[i] > '9'))
            return -1;
    int y = atoi (text);
    int n = atoi (text + 5);
    if (y < 1000 || n < 1)
        return -1;
    if (year)
        *year = y;
    if (number)
        *number = n;
    return 0;
}

const char *
hcp_case_channel_name (int channel)
{
    static const char *names[] = {
        "未知",       "政务大厅评价器",     "窗口评价二维码", "部一体化政务服务平台",
        "移动服务端", "咨询电话4000996938", "意见箱",         "函询"};
    return channel >= 1 && channel <= 7 ? names[channel] : names[0];
}

const char *
hcp_case_stage_name (int stage)
{
    static const char *names[] = {"未知", "申报后评价", "咨询后评价", "办结后评价"};
    return stage >= 1 && stage <= 3 ? names[stage] : names[0];
}

const char *
hcp_case_grade_name (int grade)
{
    static const char *names[] = {"未评价",   "非常满意", "满意",
                                  "基本满意", "不满意",   "非常不满意"};
    return grade >= 0 && grade <= 5 ? names[grade] : "未知";
}

// ---------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------

//  One statement for the case, its rating, item and unit; the answer
//  deadline comes from table deadlines (005_deadlines.sql), the one place
//  that knows it, including a recomputation after a calendar change.
#define FORM_LOAD_SQL                                                                         \
    "SELECT c.form_number, c.unit_code, u.name, u.contact, u.phone, c.assigned_at IS "        \
    "NULL, "                                                                                  \
    "c.item_code, i.name, (extract(epoch FROM r.rated_at) * 1000)::bigint, r.channel, "       \
    "r.stage, coalesce(r.standardization, 0), coalesce(r.convenience, 0), "                   \
    "coalesce(r.accuracy, 0), r.comment, "                                                    \
    "coalesce((extract(epoch FROM c.visited_at) * 1000)::bigint, 0), c.visit_cause, "         \
    "c.visit_reached, c.visit_method, "                                                       \
    "(extract(epoch FROM coalesce(c.assigned_at, c.form_filed_at)) * 1000)::bigint, "         \
    "d.due_on - date '1970-01-01', d.provisional "                                            \
    "FROM cases c JOIN ratings r ON r.rating_id = c.rating_id "                               \
    "JOIN service_items i ON i.item_code = c.item_code "                                      \
    "LEFT JOIN units u ON u.unit_code = c.unit_code "                                         \
    "LEFT JOIN LATERAL (SELECT due_on, provisional FROM deadlines "                           \
    "  WHERE case_id = c.case_id AND kind = 'answer' AND c.assigned_at IS NOT NULL "          \
    "  ORDER BY deadline_id DESC LIMIT 1) d ON true "                                         \
    "WHERE c.case_id = $1"

static char *
s_dup_value (PGresult *res, int column)
{
    if (PQgetisnull (res, 0, column))
        return NULL;
    return strdup (PQgetvalue (res, 0, column));
}

static char *s_error (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

static char *
s_error (const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    char *text = NULL;
    if (vasprintf (&text, fmt, args) < 0)
        abort ();
    va_end (args);
    return text;
}

hcp_case_form_t *
hcp_case_form_load (hcp_db_t *db, int64_t case_id, char **error)
{
    assert (db);
    if (hcp_db_prepare (db, "case_form_load", FORM_LOAD_SQL) != 0) {
        if (error)
            *error = s_error ("cannot read the form: %s", hcp_db_error (db));
        return NULL;
    }
    char id[32];
    snprintf (id, sizeof id, "%" PRId64, case_id);
    const char *params[] = {id};
    PGresult *res = hcp_db_run (db, "case_form_load", 1, params);
    if (!hcp_db_ok (db, res)) {
        if (error)
            *error = s_error ("cannot read case %s: %s", id, hcp_db_error (db));
        PQclear (res);
        return NULL;
    }
    if (PQntuples (res) == 0) {
        if (error)
            *error = s_error ("no case %s", id);
        PQclear (res);
        return NULL;
    }
    if (PQgetisnull (res, 0, 0)) {
        if (error)
            *error = s_error ("case %s has no handling form yet (the hall files it with "
                              "'hcpctl case file-form %s')",
                              id, id);
        PQclear (res);
        return NULL;
    }
    hcp_case_form_t *self = calloc (1, sizeof *self);
    if (!self)
        abort ();
    self->case_id = case_id;
    snprintf (self->number, sizeof self->number, "%s", PQgetvalue (res, 0, 0));
    self->unit_code = s_dup_value (res, 1);
    self->unit_name = s_dup_value (res, 2);
    self->unit_contact = s_dup_value (res, 3);
    self->unit_phone = s_dup_value (res, 4);
    self->unit_proposed = PQgetvalue (res, 0, 5)[0] == 't';
    self->item_code = s_dup_value (res, 6);
    self->item_name = s_dup_value (res, 7);
    self->rated_at_ms = strtoll (PQgetvalue (res, 0, 8), NULL, 10);
    self->channel = atoi (PQgetvalue (res, 0, 9));
    self->stage = atoi (PQgetvalue (res, 0, 10));
    for (int i = 0; i < 3; i++)
        self->grades[i] = atoi (PQgetvalue (res, 0, 11 + i));
    self->comment = s_dup_value (res, 14);
    self->visited_at_ms = strtoll (PQgetvalue (res, 0, 15), NULL, 10);
    self->visit_cause = s_dup_value (res, 16);
    self->visit_reached = s_dup_value (res, 17);
    self->visit_method = s_dup_value (res, 18);
    self->form_date = hcp_date_from_ms (strtoll (PQgetvalue (res, 0, 19), NULL, 10));
    self->answer_working_days = 10;
    if (!PQgetisnull (res, 0, 20)) {
        self->answer_due_known = true;
        self->answer_due = (hcp_date_t) atoi (PQgetvalue (res, 0, 20));
        self->answer_due_provisional = PQgetvalue (res, 0, 21)[0] == 't';
    }
    PQclear (res);
    return self;
}

void
hcp_case_form_destroy (hcp_case_form_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    hcp_case_form_t *self = *self_p;
    free (self->unit_code);
    free (self->unit_name);
    free (self->unit_contact);
    free (self->unit_phone);
    free (self->item_code);
    free (self->item_name);
    free (self->comment);
    free (self->visit_cause);
    free (self->visit_reached);
    free (self->visit_method);
    free (self);
    *self_p = NULL;
}

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------

static const char *
s_str (const char *text)
{
    return text ? text : "";
}

//  "2026年1月7日": how dates are written on an official document.
static void
s_date_cn (hcp_date_t date, char *buf, size_t size)
{
    char iso[11];
    hcp_date_format (date, iso);
    snprintf (buf, size, "%d年%d月%d日", atoi (iso), atoi (iso + 5), atoi (iso + 8));
}

//  "2026-01-05 10:30" in Asia/Shanghai.
static void
s_minute (int64_t ms, char *buf, size_t size)
{
    char full[32];
    hcp_clock_format (ms, full); //  "YYYY-MM-DDTHH:MM:SS+08:00"
    snprintf (buf, size, "%.10s %.5s", full, full + 11);
}

//  The due-date clause: "（2026-01-20前）", "（2026-01-20前，暂定）" or "".
static void
s_due_clause (const hcp_case_form_t *form, char *buf, size_t size)
{
    buf[0] = 0;
    if (!form->answer_due_known)
        return;
    char iso[11];
    hcp_date_format (form->answer_due, iso);
    snprintf (buf, size, "（%s前%s）", iso, form->answer_due_provisional ? "，暂定" : "");
}

//  Writes text with every line after the first indented by indent, so a
//  multi-line comment stays inside its field.
static void
s_text_block (FILE *out, const char *text, const char *indent)
{
    for (const char *p = s_str (text); *p; p++) {
        if (*p == '\r')
            continue;
        fputc (*p, out);
        if (*p == '\n' && p[1])
            fputs (indent, out);
    }
}

static const char *s_dimension_names[3] = {"服务规范性", "服务便捷性", "服务准确性"};

//  One rendering in progress: the memory stream it writes, and the values
//  both renderings (text and HTML) show the same way, formatted once.
typedef struct {
    FILE *out;
    char *text;
    size_t size;
    char rated[32];
    char visited[32]; //  "" when there was no visit
    char due[64];
    char date[32];
} s_render_t;

//  Opens the stream of render and formats the shared values of form.
//  render must stay where it is until s_render_end (the stream writes
//  through &render->text).
static void
s_render_begin (s_render_t *render, const hcp_case_form_t *form)
{
    assert (form);
    memset (render, 0, sizeof *render);
    render->out = open_memstream (&render->text, &render->size);
    if (!render->out)
        abort ();
    s_minute (form->rated_at_ms, render->rated, sizeof render->rated);
    if (form->visited_at_ms)
        s_minute (form->visited_at_ms, render->visited, sizeof render->visited);
    s_due_clause (form, render->due, sizeof render->due);
    s_date_cn (form->form_date, render->date, sizeof render->date);
}

//  Closes the stream and returns what was written (caller frees).
static char *
s_render_end (s_render_t *render)
{
    fclose (render->out);
    return render->text;
}

char *
hcp_case_form_text (const hcp_case_form_t *form)
{
    s_render_t render;
    s_render_begin (&render, form);
    FILE *out = render.out;

    fprintf (out, "编号：%s\n\n", form->number);
    fprintf (out, "                    政务服务“差评”处理单\n\n");
    fprintf (out, "%s：%s\n\n", s_str (form->unit_name),
             form->unit_proposed ? "（拟定责任单位，待办公厅明确）" : "");
    fprintf (out, "    现收到有关“%s”（事项编码：%s）的差评，转你司（局、单位）研究处理。\n\n",
             s_str (form->item_name), s_str (form->item_code));
    fprintf (out, "    差评情况：\n");
    fprintf (out, "      案件编号：%" PRId64 "\n", form->case_id);
    fprintf (out, "      评价时间：%s\n", render.rated);
    fprintf (out, "      评价渠道：%s（%s）\n", hcp_case_channel_name (form->channel),
             hcp_case_stage_name (form->stage));
    for (int i = 0; i < 3; i++)
        fprintf (out, "      %s：%s\n", s_dimension_names[i],
                 hcp_case_grade_name (form->grades[i]));
    fprintf (out, "      文字评价：");
    s_text_block (out, form->comment && *form->comment ? form->comment : "（无）",
                  "                ");
    fprintf (out, "\n");
    if (form->visited_at_ms) {
        fprintf (out, "      回访情况：%s，%s，联系到：%s\n", render.visited,
                 s_str (form->visit_method), s_str (form->visit_reached));
        fprintf (out, "      差评原因：");
        s_text_block (out, form->visit_cause, "                ");
        fprintf (out, "\n");
    }
    fprintf (out, "\n    1. 属实，提出整改意见。\n");
    fprintf (out, "    2. 认为该评价是误评或恶意评价，提出申诉意见。\n\n");
    fprintf (out, "    请根据实际情况进行说明，在%d个工作日内%s将意见反馈办公厅。\n\n",
             form->answer_working_days, render.due);
    fprintf (out, "联系人及电话：%s  %s\n\n", s_str (form->unit_contact),
             s_str (form->unit_phone));
    fprintf (out, "                                                  办公厅\n");
    fprintf (out, "                                            %s\n", render.date);
    return s_render_end (&render);
}

//  HTML-escapes text; newlines become <br>.
static void
s_html (FILE *out, const char *text)
{
    for (const char *p = s_str (text); *p; p++) {
        switch (*p) {
        case '&':
            fputs ("&amp;", out);
            break;
        case '<':
            fputs ("&lt;", out);
            break;
        case '>':
            fputs ("&gt;", out);
            break;
        case '"':
            fputs ("&quot;", out);
            break;
        case '\'':
            fputs ("&#39;", out);
            break;
        case '\r':
            break;
        case '\n':
            fputs ("<br>", out);
            break;
        default:
            fputc (*p, out);
        }
    }
}

char *
hcp_case_form_html (const hcp_case_form_t *form)
{
    s_render_t render;
    s_render_begin (&render, form);
    FILE *out = render.out;

    fputs ("<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n", out);
    fprintf (out, "<title>政务服务“差评”处理单 %s</title>\n", form->number);
    fputs ("<style>\n"
           "@page { size: A4; margin: 25mm 25mm 20mm 25mm; }\n"
           "body { font-family: \"FangSong\", \"STFangsong\", \"Noto Serif CJK SC\", serif;"
           " font-size: 16pt; line-height: 1.8; max-width: 160mm; margin: 2em auto; }\n"
           ".number { text-align: left; }\n"
           "h1 { text-align: center; font-size: 22pt; font-weight: bold; margin: 1em 0; }\n"
           "p.body { text-indent: 2em; margin: 0.3em 0; }\n"
           "table.review { border-collapse: collapse; width: 100%; font-size: 13pt;"
           " margin: 0.6em 0; }\n"
           "table.review th, table.review td { border: 1px solid #000; padding: 2pt 6pt;"
           " text-align: left; vertical-align: top; }\n"
           "table.review th { width: 8em; font-weight: normal; }\n"
           ".proposed { font-size: 12pt; }\n"
           ".signature { text-align: right; margin-top: 2em; }\n"
           "</style>\n</head>\n<body>\n",
           out);
    fputs ("<p class=\"number\">编号：", out);
    s_html (out, form->number);
    fputs ("</p>\n<h1>政务服务“差评”处理单</h1>\n<p class=\"to\">", out);
    s_html (out, form->unit_name);
    fputs ("：", out);
    if (form->unit_proposed)
        fputs ("<span class=\"proposed\">（拟定责任单位，待办公厅明确）</span>", out);
    fputs ("</p>\n<p class=\"body\">现收到有关“", out);
    s_html (out, form->item_name);
    fputs ("”（事项编码：", out);
    s_html (out, form->item_code);
    fputs ("）的差评，转你司（局、单位）研究处理。</p>\n", out);
    fputs ("<table class=\"review\">\n", out);
    fprintf (out, "<tr><th>案件编号</th><td>%" PRId64 "</td></tr>\n", form->case_id);
    fprintf (out, "<tr><th>评价时间</th><td>%s</td></tr>\n", render.rated);
    fprintf (out, "<tr><th>评价渠道</th><td>%s（%s）</td></tr>\n",
             hcp_case_channel_name (form->channel), hcp_case_stage_name (form->stage));
    for (int i = 0; i < 3; i++)
        fprintf (out, "<tr><th>%s</th><td>%s</td></tr>\n", s_dimension_names[i],
                 hcp_case_grade_name (form->grades[i]));
    fputs ("<tr><th>文字评价</th><td>", out);
    s_html (out, form->comment && *form->comment ? form->comment : "（无）");
    fputs ("</td></tr>\n", out);
    if (form->visited_at_ms) {
        fprintf (out, "<tr><th>回访情况</th><td>%s，", render.visited);
        s_html (out, form->visit_method);
        fputs ("，联系到：", out);
        s_html (out, form->visit_reached);
        fputs ("</td></tr>\n<tr><th>差评原因</th><td>", out);
        s_html (out, form->visit_cause);
        fputs ("</td></tr>\n", out);
    }
    fputs ("</table>\n", out);
    fputs ("<p class=\"body\">1. 属实，提出整改意见。</p>\n", out);
    fputs ("<p class=\"body\">2. 认为该评价是误评或恶意评价，提出申诉意见。</p>\n", out);
    fprintf (out,
             "<p "
             "class=\"body\">请根据实际情况进行说明，在%d个工作日内%s将意见反馈办公厅。</p>\n",
             form->answer_working_days, render.due);
    fputs ("<p class=\"contact\">联系人及电话：", out);
    s_html (out, form->unit_contact);
    fputs ("&nbsp;&nbsp;", out);
    s_html (out, form->unit_phone);
    fputs ("</p>\n", out);
    fprintf (out, "<p class=\"signature\">办公厅<br>%s</p>\n", render.date);
    fputs ("</body>\n</html>\n", out);
    return s_render_end (&render);
}
