"""The sGPO Studio dashboard: Streamlit pages over the sgpo library (`sgpo dashboard` serves it).

app.py builds the navigation; views/ hold one short script per step of the data flow
(data -> audit -> plan -> train -> compare); state.py owns store access, caching and background
processes; analysis.py and figures.py are plain functions over frames that tests call directly.
"""
