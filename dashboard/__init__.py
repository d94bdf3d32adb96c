"""The sGPO Studio dashboard: Streamlit pages over the sgpo library (`sgpo dashboard` serves it).

app.py builds the navigation; views/ hold one short script per step of the data flow
(data -> audit -> plan -> train -> compare). state.py opens the store and caches what the library returns
(sgpo.profiles, sgpo.plans, sgpo.runs, sgpo.compare); forms.py builds the configs and command lines the
forms show; jobs.py lists the background profiles as the store records them (the library's detached
workers); analysis.py, curves.py and the figure modules are plain functions over frames that tests call
directly.
"""
